"""What every destination adapter provides to the engine, and the pieces they share.

An adapter only knows its API: how to address a record, how to pack changes into requests within the
API's count and byte limits, and how the API reports per-item outcomes. Diffing, retries, rate limits,
state and the ledger belong to the engine and sinks.http."""

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
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


@dataclass
class Change:
    key: str
    kind: str  # add | change | remove
    identifier: str | None
    row: dict | None = None  # the model row (add/change)
    prev_row: dict | None = None  # what the destination was last told (change/remove)
    row_hash: str | None = None
    payload_json: str | None = None
    fields: list[str] = field(default_factory=list)  # attributes to send: all (add), changed (change), cleared (remove)
    internal: bool = False  # a helper step (leaving an old identifier), not a row outcome of its own
    rn: int | None = None  # its step in the run's plan (_changes.rn)


@dataclass
class Batch:
    request: Request | None  # None: refused before sending (e.g. over a size limit), see `error`, or a job
    items: list[Change]
    error: str | None = None
    # A delivery that is more than one request (e.g. a bulk import and its polling): awaited with the
    # client, it returns the items' outcomes itself.
    job: Callable[[HttpClient], Awaitable[list["Outcome"]]] | None = None


Outcome = tuple[Change, str | None]  # (change, None if acknowledged else the reason it was refused)


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
    for name, kind in missing.items():
        if name not in have:
            created = await create(name, kind)
            try:
                check(created, f"creating attribute {name!r}")
            except SetupError:
                have = await defined()
                if name not in have:
                    raise
        if have.get(name, kind) != kind:
            raise SetupError(f"{vendor} attribute {name!r} exists with type {have[name]!r}, but {model} sends "
                             f"{kind!r}: change it in {vendor}, or set meta {type_meta} on the column")
        registry.put("attribute", name, kind)


class Destination:
    name: str = ""
    account: str = ""
    concurrency: int = 8
    credential_hint: str = ""

    def open_client(self) -> HttpClient:
        raise NotImplementedError

    async def setup(self, spec, client: HttpClient, registry: ObjectRegistry, audiences: list[str]) -> None:
        """Idempotently create what the sync writes into (look up first, create when missing)."""

    def batches(self, spec, changes: list[Change]) -> Iterator[Batch]:
        raise NotImplementedError

    def interpret(self, spec, batch: Batch, response) -> list[Outcome]:
        raise NotImplementedError

    def describe(self, spec, change: Change) -> dict:
        """A sample of what would be sent for one change (for plans); values only from the model."""
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
