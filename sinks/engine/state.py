"""Acknowledgements on their way to the ledger: what a run has heard back (Acks), and the one transaction
that writes a batch of it (write). Only step numbers (_changes.rn) are kept in Python; identifiers, hashes and
payloads are already in _changes, and the state is built from there.

sync_state has no key index (it made every write look keys up, and every checkpoint rewrite it whole). Keys
stay unique because only one run at a time writes a sync's state (run.claim): an add's key was not there when
the run planned, and a change replaces its record's row."""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable

import duckdb

from sinks.destinations.base import Change
from sinks.engine import merges as merge_steps
from sinks.engine.events import release_in_flight
from sinks.engine.ledger import now
from sinks.engine.result import RunResult
from sinks.http import REDACT

# Acknowledged steps, sent as runs of consecutive ones ($firsts[i]..$lasts[i], see step_runs): most
# acknowledgements are whole requests of consecutive steps, so a few numbers cross instead of every one.
ACKED_STEPS = "(select unnest(range(f, l + 1)) as rn from (select unnest($firsts) as f, unnest($lasts) as l))"


def step_runs(rns: list[int]) -> dict:
    """Step numbers as the parameters of ACKED_STEPS: runs of consecutive numbers, and their range ($lo..$hi,
    which lets DuckDB skip the row groups outside it, so a write stays proportional to the rows written)."""
    rns = sorted(rns)
    breaks = [i for i in range(1, len(rns)) if rns[i] != rns[i - 1] + 1]
    return {"firsts": [rns[0]] + [rns[i] for i in breaks], "lasts": [rns[i - 1] for i in breaks] + [rns[-1]],
            "lo": rns[0], "hi": rns[-1]}


@dataclass
class Taken:
    """What was heard back since the last write."""

    upserts: list[int] = field(default_factory=list)  # acknowledged adds and changes
    removes: list[int] = field(default_factory=list)
    fields: list[tuple[int, list[str]]] = field(default_factory=list)  # the fields each acknowledged change sent
    rejections: list[tuple[Change, int | None, str]] = field(default_factory=list)
    unconfirmed: list[int] = field(default_factory=list)  # steps sent in a request of unknown fate

    def __bool__(self) -> bool:
        return bool(self.upserts or self.removes or self.rejections or self.unconfirmed)


class Acks:
    """What the destination acknowledged or refused, counted in the run's result as it arrives."""

    def __init__(self, result: RunResult, progress: Callable[[int, int], None] | None = None) -> None:
        self.result = result
        self.progress = progress
        self.pending = Taken()
        self.clean = True  # every step was acknowledged: the marks this run re-asserted can go
        self.total = 0  # steps to deliver, for progress
        self.done = 0

    def ack(self, change: Change) -> None:
        if change.internal:  # a step of another row, which is recorded with that row
            return
        # A merge, like a remove, takes the retired record out of the state.
        (self.pending.removes if change.kind in ("remove", "merge") else self.pending.upserts).append(change.rn)
        if change.kind == "change":
            self.pending.fields.append((change.rn, change.fields))
        setattr(self.result, f"acked_{change.kind}", getattr(self.result, f"acked_{change.kind}") + 1)
        self._tick(1)

    def ack_bulk(self, rns: list[int]) -> None:
        self.pending.upserts += rns  # bulk rows are adds
        self.result.acked_add += len(rns)
        self._tick(len(rns))

    def reject(self, changes: list[Change], status: int | None, error: str) -> None:
        self.clean = False
        for change in changes:
            self.pending.rejections.append((change, status, REDACT(error)))
            if not change.internal:
                self.result.rejected += 1
                self._tick(1)

    def set_aside(self, keys: list[str], reason: str) -> None:
        """Rows the plan could not address: refused before delivery (they are not among the steps to deliver)."""
        self.pending.rejections += [(Change(key=key, kind="add", identifier=None), None, reason) for key in keys]
        self.result.rejected += len(keys)

    def unconfirmed(self, rns: list[int]) -> None:
        self.pending.unconfirmed += rns

    @property
    def waiting(self) -> int:
        return len(self.pending.upserts) + len(self.pending.removes)

    def take(self) -> Taken:
        taken, self.pending = self.pending, Taken()
        self.result.unconfirmed += len(set(taken.unconfirmed))
        return taken

    def _tick(self, n: int) -> None:
        self.done += n
        if self.progress:
            self.progress(self.done, self.total)


def write(con: duckdb.DuckDBPyConnection, taken: Taken, *, sync: str, run_id: str, resend_after_s: float,
          then: Callable[[], None] | None = None, events: bool = False, merges: bool = False) -> None:
    """Write acknowledged rows to the state and the rest of `taken` to the ledger, and run `then`, in one
    transaction. `events`: an events sync's, whose unknown fates are settled by its next plan (events.py),
    not re-asserted, and whose in-flight marks an answer settles. `merges`: a sync whose plan has _merges
    (sinks/engine/merges.py), whose outcomes are recorded with the removes and merges that carried them."""
    if not taken and then is None:
        return
    at = now()
    con.execute("begin")
    try:
        if taken.upserts:
            _write_upserts(con, taken, sync, run_id, at)
        if taken.removes:
            con.execute("delete from relay.sync_state where sync_name = $sync and record_key in "
                        "(select record_key from _changes where rn in (select unnest($rns)) and not leaving)",
                        {"sync": sync, "rns": taken.removes})
        if taken.upserts or taken.removes:
            _write_deliveries(con, taken, sync, run_id, at)
        if merges and taken.removes:
            merge_steps.record(con, taken.removes, run_id, at)
        if taken.unconfirmed and not events:
            _write_unconfirmed(con, taken.unconfirmed, sync, at + timedelta(seconds=resend_after_s))
        if taken.unconfirmed and merges:
            merge_steps.mark_survivors(con, sync, taken.unconfirmed, at + timedelta(seconds=resend_after_s))
        if taken.unconfirmed and events:  # unanswered: a stalled copy may land until this time + the window
            con.execute("update relay.sync_in_flight set unknown_at = $now where sync_name = $sync and record_key in "
                        "(select record_key from _changes where rn in (select unnest($rns)))",
                        {"sync": sync, "rns": taken.unconfirmed, "now": at})
        answered = taken.upserts + [c.rn for c, _, _ in taken.rejections if c.rn is not None]
        if events and answered:  # acknowledged, or refused: either way it did not land twice
            release_in_flight(con, sync, answered)
        if taken.rejections:
            _write_rejections(con, taken.rejections, sync, run_id, at)
        if then is not None:
            then()
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


def _write_upserts(con: duckdb.DuckDBPyConnection, taken: Taken, sync: str, run_id: str, at) -> None:
    acked = {"sync": sync, "now": at, "run": run_id, **step_runs(taken.upserts)}
    con.execute("""
        insert into relay.sync_state by name
        select $sync as sync_name, c.record_key, c.identifier, c.row_hash, c.payload,
               $now as first_synced_at, $now as last_synced_at, $run as last_run_id
        from _changes c semi join """ + ACKED_STEPS + """ acked using (rn)
        where c.rn between $lo and $hi and not c.leaving and c.kind = 'add'""", acked)
    if not taken.fields:  # no change was acknowledged
        return
    # The acknowledged changes, with when their records were first synced, replace their state rows.
    con.execute("""
        create or replace temp table _acked_changes as
        select c.record_key, c.identifier, c.row_hash, c.payload, s.first_synced_at
        from _changes c semi join """ + ACKED_STEPS + """ acked using (rn)
        left join relay.sync_state s on s.sync_name = $sync and s.record_key = c.record_key
        where c.rn between $lo and $hi and not c.leaving and c.kind = 'change'""",
                {k: acked[k] for k in ("sync", "firsts", "lasts", "lo", "hi")})
    con.execute("delete from relay.sync_state where sync_name = $sync and record_key in "
                "(select record_key from _acked_changes)", {"sync": sync})
    con.execute("""
        insert into relay.sync_state by name
        select $sync as sync_name, record_key, identifier, row_hash, payload,
               coalesce(first_synced_at, $now) as first_synced_at, $now as last_synced_at, $run as last_run_id
        from _acked_changes""", {"sync": sync, "now": at, "run": run_id})


def _write_deliveries(con: duckdb.DuckDBPyConnection, taken: Taken, sync: str, run_id: str, at) -> None:
    # Null fields: an add, which sends every attribute that is set, or a remove (or merge), the whole record.
    con.execute("""
        insert into relay.sync_deliveries
        select $run, $sync, c.record_key, if(c.kind in ('remove', 'merge'), c.prev_identifier, c.identifier), c.kind,
               f.fields, $now
        from _changes c semi join """ + ACKED_STEPS + """ acked using (rn)
        left join (select unnest($crns) as rn, unnest($cfields) as fields) f using (rn)
        where c.rn between $lo and $hi and not c.leaving""",
                {"run": run_id, "sync": sync, "now": at, **step_runs(taken.upserts + taken.removes),
                 "crns": [r for r, _ in taken.fields], "cfields": [f for _, f in taken.fields]})


def _write_unconfirmed(con: duckdb.DuckDBPyConnection, rns: list[int], sync: str, until) -> None:
    # Marked at the identifier the step addressed, with what it wrote there (or removed from there). A merge's
    # mark is its survivor's (merges.mark_survivors): the retired record is gone.
    con.execute("""
        insert into relay.sync_unconfirmed
        select distinct on (record_key, identifier) $sync, record_key, identifier, payload, $until
        from (select record_key, if(leaving or kind = 'remove', prev_identifier, identifier) as identifier,
                     if(leaving or kind = 'remove', prev_payload, payload) as payload
              from _changes where rn in (select unnest($rns)) and kind <> 'merge')
        where identifier is not null
        on conflict (sync_name, record_key, identifier) do update set
            payload = excluded.payload, resend_after = excluded.resend_after""",
                {"sync": sync, "rns": rns, "until": until})


def _write_rejections(con: duckdb.DuckDBPyConnection, rejections: list, sync: str, run_id: str, at) -> None:
    con.execute("""
        insert into relay.sync_rejections
        select $run, $sync, unnest($keys), unnest($ids), unnest($kinds), unnest($codes), unnest($reasons), $now""",
                {"run": run_id, "sync": sync, "now": at,
                 "keys": [c.key for c, _, _ in rejections], "ids": [c.identifier for c, _, _ in rejections],
                 "kinds": [c.kind for c, _, _ in rejections], "codes": [s for _, s, _ in rejections],
                 "reasons": [reason[:1000] for _, _, reason in rejections]})
