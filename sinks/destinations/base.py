"""What every destination adapter provides to the engine, and the pieces they share.

An adapter only knows its API: how to address a record, how to pack changes into requests within the
API's count and byte limits, and how the API reports per-item outcomes. Diffing, retries, rate limits,
state and the ledger belong to the engine and sinks.http."""

import asyncio
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable, Iterable, Iterator

import duckdb

from sinks.http import HttpClient, Request


class SplitBatch(Exception):
    """The destination refused a multi-item request as a whole, applying none of it. `rejected` maps the
    items its answer blames (by position in the batch) to reasons: the engine records those and resends
    the rest together. With nobody blamed, the engine bisects the batch to find the bad rows."""

    def __init__(self, rejected: dict[int, str] | None = None) -> None:
        super().__init__()
        self.rejected = rejected or {}


class DestinationAuthError(RuntimeError):
    """Credentials refused: no row is at fault, so the run stops instead of rejecting rows."""


class SetupError(RuntimeError):
    """A list, audience, segment or attribute the sync needs is missing and cannot be created."""


@dataclass(slots=True)  # no __dict__: a first sync holds a (valueless) Change per row in flight
class Change:
    key: str
    kind: str  # add | change | remove | merge (the retired record at `identifier` into the survivor, `row`)
    identifier: str | None
    row: dict | None = None  # the model row (add/change); a remove's: the declared exit values
    prev_row: dict | None = None  # what the destination was last told (change/remove)
    row_hash: str | None = None
    payload_json: str | None = None
    fields: list[str] = field(default_factory=list)  # attributes to send: all (add), changed (change), cleared (remove)
    internal: bool = False  # a helper step (leaving an old identifier), not a row outcome of its own
    rn: int | None = None  # its step in the run's plan (_changes.rn)


Outcome = tuple[Change, str | None]  # (change, None if acknowledged else the reason it was refused)


@dataclass
class Batch:
    request: Request | None  # None: refused before sending (e.g. over a size limit), see `error`, or a job
    items: list[Change]
    error: str | None = None
    # A delivery that is more than one request (e.g. a bulk import and its polling): awaited with the
    # client and a function whose result, awaited, is the items (read only when needed), it returns the
    # items' outcomes, or None when every item was acknowledged.
    job: Callable[[HttpClient, Callable[[], Awaitable[list[Change]]]], Awaitable[list[Outcome] | None]] | None = None
    # A bulk batch (see Destination.bulk): the steps (_changes.rn) of its entries, in entry order, all adds;
    # `items` stays empty until an answer needs the changes themselves (the engine then reads them).
    bulk: list[int] | None = None


@dataclass
class Bulk:
    """How a destination takes adds the engine packs without reading them (see Destination.bulk)."""
    entry: str  # SQL over _changes (alias c): the row's entry, as text; null leaves the row to `batches`
    max_items: int
    max_bytes: int | None = None  # entries plus one separator each, per request
    max_entry_bytes: int | None = None  # a larger entry goes through `batches`, which refuses it with the reason
    min_items: int = 1  # fewer such rows in a chunk go through `batches` too


class ObjectRegistry:
    """Ids of objects created at a destination (lists, audiences, segments), kept in the warehouse so
    setup looks up before it creates. Attribute definitions, addressed by name, keep their type instead."""

    def __init__(self, con: duckdb.DuckDBPyConnection, destination: str, account: str) -> None:
        self.con, self.destination, self.account = con, destination, account

    def get(self, kind: str, name: str) -> str | None:
        row = self.con.execute(
            "select external_id from relay.destination_objects where destination = ? and account = ? and kind = ? and name = ?",
            [self.destination, self.account, kind, name],
        ).fetchone()
        return row[0] if row else None

    def put(self, kind: str, name: str, external_id: str) -> None:
        self.con.execute(
            "insert or replace into relay.destination_objects values (?, ?, ?, ?, ?, ?)",
            [self.destination, self.account, kind, name, str(external_id), datetime.utcnow()],
        )


async def ensure_attributes(missing: dict[str, str], registry: "ObjectRegistry", *, defined, create, check,
                            vendor: str, model: str, type_meta: str) -> None:
    """Define the attributes a sync writes, each with its type, before the first write. A refused create is
    looked up again (another run may have made it); one that exists with another type stops the sync."""
    have = await defined()
    new = [name for name in missing if name not in have]
    # Created together: the creates do not depend on one another, and each is a round trip a first run waits for.
    created = await asyncio.gather(*(create(name, missing[name]) for name in new))
    refused = []
    for name, response in zip(new, created):
        try:
            check(response, f"creating attribute {name!r}")
        except SetupError as exc:
            refused.append((name, exc))
    if refused:
        have = await defined()
        for name, exc in refused:
            if name not in have:
                raise exc
    for name, kind in missing.items():
        if have.get(name, kind) != kind:
            raise SetupError(f"{vendor} attribute {name!r} exists with type {have[name]!r}, but {model} sends "
                             f"{kind!r}: change it in {vendor}, or set meta {type_meta} on the column")
        registry.put("attribute", name, kind)


class Destination:
    name: str = ""
    account: str = ""
    concurrency: int = 8
    credential_hint: str = ""
    # Whether the API drops a repeated event (by an id it takes): a resend is then harmless. Where it does
    # not, the engine journals events before sending and never resends one of unknown fate.
    deduplicates_events: bool = False
    # How an identity merge reaches this destination (sinks/engine/merges.py): "merge" (a step of kind merge:
    # the retired record merges into the survivor, which already holds the survivor's row), "retire" (the
    # retired record exits, recorded as retired) or "exit" (it exits; `merge_note` says why it is not merged).
    merge_mode: str = "exit"
    merge_note: str = ""
    # Crash tests: called with the name of a step inside a delivery of several requests (e.g. "merged").
    failpoint: Callable[[str], None] | None = None

    @staticmethod
    def declaration_problems(spec) -> list[str]:
        """What this destination cannot do as the sync declares it (e.g. an exit it cannot express); checked
        when the declarations load, so a run never counts such a change as done."""
        return []

    # The variables each auth group's credential comes from: named in errors, never their values.
    CREDENTIAL_VARIABLES: dict[str, str] = {}

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header each auth group sends (they carry secrets: send them, never print them)."""
        raise NotImplementedError

    def open_client(self, **options) -> HttpClient:
        """The client a run sends through; `options` override HttpClient's (a preflight's short timeout)."""
        raise NotImplementedError

    def probes(self) -> dict[str, Request]:
        """Per auth group, a cheap read that proves its credential and the way there (sinks.destinations.preflight).
        A 404 answer passes: a probe may address something that does not exist."""
        return {}

    def probe_problem(self, group: str, response) -> str | None:
        """What an accepted probe's answer still says is wrong (e.g. the account lives in another region)."""
        return None

    def attribute_types(self, spec) -> dict[str, str]:
        """The attribute definitions a sync needs here, name -> this destination's type ({}: none needed)."""
        return {}

    async def attribute_definitions(self, client: HttpClient) -> dict[str, str] | None:
        """The attributes defined here, name -> type; None when they cannot be read (no key for it)."""
        return None

    async def setup(self, spec, client: HttpClient, registry: ObjectRegistry, audiences: list[str]) -> None:
        """Idempotently create what the sync writes into (look up first, create when missing)."""

    def batches(self, spec, changes: list[Change]) -> Iterator[Batch]:
        raise NotImplementedError

    def can_look_up_events(self) -> bool:
        """Whether landed_events can tell which events landed (else the engine holds those of unknown fate)."""
        return False

    async def landed_events(self, spec, client: HttpClient, unknown: list[tuple[str, str, str, datetime]]) -> set[str]:
        """Of events whose requests had no answer ((event id, identifier, event name, journaled at)), the ids
        of those the destination holds. Only called when can_look_up_events()."""
        raise NotImplementedError

    def interpret(self, spec, batch: Batch, response) -> list[Outcome]:
        raise NotImplementedError

    def bulk(self, spec) -> Bulk | None:
        """The fast path of a first sync: adds whose identifier no other step of the run addresses become
        entries in the warehouse (SQL, no JSON round trip in Python), which the engine packs into
        `bulk_batch`es. None: everything goes through `batches`."""
        return None

    def bulk_batch(self, spec, entries: list[str]) -> Batch:
        """The request (or job) carrying these entries; the engine sets its items."""
        raise NotImplementedError

    def acknowledged(self, spec, response) -> bool:
        """Whether the answer to a request acknowledges every item in it (as `interpret` would)."""
        raise NotImplementedError

    def describe(self, spec, change: Change) -> dict:
        """A sample of what would be sent for one change (for plans); values only from the model."""
        if change.kind == "merge":
            return {"key": change.key, "kind": "merge", "identifier": change.identifier,
                    "into": change.row[spec.identifier]}
        return {"key": change.key, "kind": change.kind, "identifier": change.identifier,
                "fields": {f: (change.row or {}).get(f) for f in change.fields} if change.kind != "remove" else change.fields}


def pack(items: Iterable[Change], *, max_items: int, max_bytes: int | None = None,
         size=lambda change: 0, group=None) -> Iterator[list[Change]]:
    """Greedy packing by count and bytes. With `group`, items sharing a group value are never split
    across two packs (unless one group alone exceeds a pack)."""
    pack_, size_ = [], 0
    items = list(items)
    i = 0
    while i < len(items):
        j = i + 1
        if group is not None:
            while j < len(items) and group(items[j]) == group(items[i]):
                j += 1
        run = items[i:j]
        run_size = sum(size(c) for c in run)
        too_many = len(pack_) + len(run) > max_items
        too_big = max_bytes is not None and size_ + run_size > max_bytes
        if pack_ and (too_many or too_big):
            yield pack_
            pack_, size_ = [], 0
        if len(run) > max_items:  # one group larger than a request: it has to be split
            for k in range(0, len(run), max_items):
                yield run[k:k + max_items]
        else:
            pack_.extend(run)
            size_ += run_size
        i = j
    if pack_:
        yield pack_


def event_time(spec, change: Change) -> datetime:
    """When an events sync's event happened (UTC), to the millisecond."""
    return _EPOCH + timedelta(milliseconds=event_ms(spec, change))


def event_ms(spec, change: Change) -> int:
    """When an events sync's event happened, in whole milliseconds since the epoch, from its payload: a
    timestamp (text; UTC unless it carries an offset) or Unix seconds. Integer arithmetic, so the SQL of
    event_ms_sql gets the same value (a float's 0.001 s is 0.000999... s)."""
    value = change.row[spec.events.time_column]
    if isinstance(value, (int, float)):
        return math.floor(value * 1000)
    at = datetime.fromisoformat(value)
    at = at.astimezone(timezone.utc) if at.tzinfo else at.replace(tzinfo=timezone.utc)
    return (at - _EPOCH) // timedelta(milliseconds=1)


def event_ms_sql(spec) -> str:
    """event_ms in SQL over the engine's _changes (alias c); from microseconds, as epoch_ms rounds."""
    at = f"json_extract_string(c.payload, {sql_string(json_path(spec.events.time_column))})"
    if column_kind(spec.columns[spec.events.time_column]) == "number":
        return f"cast(floor(cast({at} as double) * 1000) as bigint)"
    return (f"case when regexp_matches({at}, '([+-][0-9]{{2}}(:?[0-9]{{2}})?|Z)$') "
            f"then epoch_us(cast({at} as timestamptz)) else epoch_us(cast({at} as timestamp)) end // 1000")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def event_properties(spec, change: Change) -> dict:
    """An event's properties: the sync model's other columns that are set."""
    return {c: change.row[c] for c in spec.attribute_columns if change.row.get(c) is not None}


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def json_path(column: str) -> str:
    return "$." + json.dumps(column)


def attributes_sql(spec) -> str | None:
    """SQL for an add's attributes, as a JSON object from the engine's payload with the unset (null) ones
    left out, as an add sends them. None when a column could hold structs: the SQL would drop their
    null members too."""
    if any(column_kind(spec.columns[c]) is None for c in spec.attribute_columns):
        return None
    expr = "c.payload"
    for column in spec.columns:
        if column not in spec.attribute_columns:
            expr = f"json_remove({expr}, {sql_string(json_path(column))})"
    return f"json_strip_nulls({expr})"


def dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


_KINDS = {
    **dict.fromkeys(("varchar", "text", "string", "char", "bpchar", "uuid"), "string"),
    **dict.fromkeys(("tinyint", "smallint", "integer", "int", "bigint", "hugeint", "int2", "int4", "int8",
                     "utinyint", "usmallint", "uinteger", "ubigint", "decimal", "numeric", "double", "float",
                     "real"), "number"),
    **dict.fromkeys(("boolean", "bool"), "boolean"),
    "date": "date",
    **dict.fromkeys(("timestamp", "timestamptz", "datetime"), "timestamp"),
}


def column_kind(data_type: str) -> str | None:
    """What a declared column type becomes in the engine's JSON payloads: 'string', 'number', 'boolean',
    'date' (YYYY-MM-DD), 'timestamp' (no offset, so not RFC 3339), 'list <kind>'; None if unknown."""
    data_type = data_type.strip().lower()
    if data_type.endswith("[]"):
        inner = column_kind(data_type[:-2])
        return f"list {inner}" if inner else None
    return _KINDS.get(re.match(r"[a-z0-9]*", data_type).group())
