"""Reading the plan (_changes) for delivery: chunks of changes in identifier order, and the bulk path, whose
request entries the warehouse builds (Destination.bulk) so that Python handles their values only when an
answer blames some."""

import bisect
import itertools
import json
from typing import Callable, Iterator

import duckdb

from sinks.declarations import SyncSpec
from sinks.destinations.base import Batch, Bulk, Change, Destination
from sinks.engine.changes import STEP_COLUMNS

Chunk = tuple[list[Change], list[tuple]]  # changes, and bulk rows (rn, entry, entry bytes)


class ChangeReader:
    """Reads _changes on one connection; `to_change(step, rn)` makes a step a Change; `steps`: which steps this
    delivery sends (SQL over _changes; merges go in a delivery of their own, see SyncRun._deliver_merges)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, spec: SyncSpec, destination: Destination,
                 to_change: Callable[[tuple, int], Change], chunk_rows: int, steps: str = "true") -> None:
        self.con, self.spec, self.destination = con, spec, destination
        self.to_change = to_change
        self.chunk_rows = chunk_rows
        self.steps = steps

    def chunks(self, bulk: Bulk | None) -> Iterator[Chunk]:
        """Changes in identifier order, never splitting one identifier's rows across chunks (so a destination
        that forbids parallel writes to one profile can keep them in one request); with each chunk, its bulk
        rows (see bulk_rows), which are not among its changes."""
        first, last = self.con.execute(f"select coalesce(min(rn), 1), coalesce(max(rn), 0) from _changes "
                                       f"where {self.steps}").fetchone()
        carry = []
        for start in range(first, last + 1, self.chunk_rows):
            end = min(start + self.chunk_rows, last + 1)
            bulk_rows = self.bulk_rows(bulk, start, end) if bulk else []
            changes = carry + (self._changes(start, end, bulk_rows) if len(bulk_rows) < end - start else [])
            if end > last:  # the last chunk: nothing follows to hold an identifier back for
                if changes or bulk_rows:
                    yield changes, bulk_rows
                return
            cut = len(changes)
            while cut > 0 and changes[cut - 1].identifier == changes[-1].identifier:
                cut -= 1
            if cut == 0 and not bulk_rows:  # one identifier fills the chunk: nothing to hold back
                cut = len(changes)
            carry = changes[cut:]
            yield changes[:cut], bulk_rows

    def _changes(self, start: int, end: int, bulk_rows: list[tuple]) -> list[Change]:
        rows = self.con.execute(
            f"select rn, {STEP_COLUMNS} from _changes anti join (select unnest($bulk) as rn) using (rn) "
            f"where rn >= $start and rn < $end and {self.steps} order by rn",
            {"bulk": [row[0] for row in bulk_rows], "start": start, "end": end},
        ).fetchall()
        return [self.to_change(row[1:], row[0]) for row in rows]

    def bulk_rows(self, bulk: Bulk, start: int, end: int) -> list[tuple]:
        """The chunk's bulk rows: adds alone at their identifier whose entry the destination can build (within
        its size limit), as (rn, entry, entry bytes or 0 when the destination has no byte limit) in rn order."""
        limit = f"and strlen(e) <= {int(bulk.max_entry_bytes)}" if bulk.max_entry_bytes else ""
        rows = self.con.execute(
            f"""
            with entries as materialized (  -- each entry made once, however often it is named below
                select rn, {bulk.entry} as e from _changes c
                where rn >= $start and rn < $end and kind = 'add' and alone and {self.steps})
            select rn, e, {'strlen(e)' if bulk.max_bytes else 0} from entries where e is not null {limit} order by rn
            """,
            {"start": start, "end": end},
        ).fetchall()
        return rows if len(rows) >= bulk.min_items else []

    def bulk_batches(self, bulk: Bulk, rows: list[tuple]) -> Iterator[Batch]:
        """Bulk batches of consecutive rows, as many to a batch as the count and byte limits allow."""
        rns = [row[0] for row in rows]
        entries = [row[1] for row in rows]
        # ends[i]: the bytes of the first i entries, a separator each (a bisection finds where a batch ends,
        # instead of a Python step per entry).
        ends = list(itertools.accumulate((row[2] + 1 for row in rows), initial=0)) if bulk.max_bytes else []
        first = 0
        while first < len(rns):
            last = min(first + bulk.max_items, len(rns))
            if bulk.max_bytes:  # the most entries that fit, at least one
                last = max(first + 1, bisect.bisect_right(ends, ends[first] + bulk.max_bytes, first + 1, last + 1) - 1)
            batch = self.destination.bulk_batch(self.spec, entries[first:last])
            batch.items, batch.bulk = [], rns[first:last]
            yield batch
            first = last

    def items(self, batch: Batch) -> list[Change]:
        """A batch's changes, a bulk batch's read in full from _changes (in entry order) the first time."""
        if batch.bulk:
            rns = batch.bulk
            rows = self.con.execute(
                f"select rn, {STEP_COLUMNS} from _changes semi join (select unnest($rns) as rn) using (rn) "
                "where rn between $lo and $hi order by rn",
                {"rns": rns, "lo": rns[0], "hi": rns[-1]},
            ).fetchall()
            batch.items, batch.bulk = [self.to_change(row[1:], row[0]) for row in rows], None
        return batch.items

    def audiences(self) -> list[str]:
        """The audiences a membership sync's plan addresses, or the event names an events sync's sends (its
        setup makes sure each exists)."""
        column = self.spec.events.name_column if self.spec.events else "audience"
        rows = self.con.execute(
            "select distinct json_extract_string(coalesce(payload, prev_payload), ?) from _changes order by 1",
            ["$." + json.dumps(column)]).fetchall()
        return [a for (a,) in rows if a is not None]
