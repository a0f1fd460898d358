"""From a sync model's rows to the changes a destination is sent: how rows are keyed and hashed in SQL, and
how one step of the plan (a row of the temp table _changes) becomes a Change."""

import json

from sinks.declarations import SyncSpec
from sinks.destinations.base import Change

# The columns of _changes a Change is made from, in to_change's order.
STEP_COLUMNS = "record_key, kind, identifier, prev_identifier, payload, prev_payload, row_hash, leaving"


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def key_sql(spec: SyncSpec, alias: str = "m") -> str:
    """The record key as text; a compound key is a JSON array, so parts containing separators stay unambiguous."""
    if len(spec.primary_key) == 1:
        return f"cast({alias}.{quote(spec.primary_key[0])} as varchar)"
    parts = ", ".join(f"cast({alias}.{quote(c)} as varchar)" for c in spec.primary_key)
    return f"cast(to_json([{parts}]) as varchar)"


def payload_sql(spec: SyncSpec, alias: str = "m") -> str:
    """The row as typed JSON, so the state takes it as it is (a cast from text would parse every payload again)."""
    fields = ", ".join(f"{quote(c)} := {alias}.{quote(c)}" for c in spec.columns)
    return f"to_json(struct_pack({fields}))"


def to_change(spec: SyncSpec, step: tuple, rn: int | None = None, *, resend: frozenset[str] = frozenset(),
              full_resync: bool = False) -> Change:
    """One step of the plan (STEP_COLUMNS) as the Change a destination adapter turns into requests, with the
    fields it must send. `resend`: keys re-asserted in full (a stale write may have set any field)."""
    key, kind, identifier, prev_identifier, payload, prev_payload, row_hash, leaving = step
    new = json.loads(payload) if payload is not None else None
    old = json.loads(prev_payload) if prev_payload is not None else None
    attrs = spec.attribute_columns
    exits = spec.exit_values  # what a record leaving the model holds; every other field is cleared
    if leaving:  # the destination addresses records by identifier: clear or leave the old one
        return Change(key, "remove", prev_identifier, exits, old, None, None, list(attrs), internal=True, rn=rn)
    if kind == "remove":
        return Change(key, kind, prev_identifier, exits, old, None, None, list(attrs), rn=rn)
    if kind == "merge":  # the retired record, at its identifier, into the survivor, whose row it carries
        return Change(key, kind, prev_identifier, new, old, row_hash, payload, [], rn=rn)
    if kind == "change" and key in resend:
        fields = list(attrs)
    elif kind == "add" or full_resync or identifier != prev_identifier:
        fields = [c for c in attrs if new.get(c) is not None]  # a new record at its identifier: what is set
    else:
        fields = [c for c in attrs if new.get(c) != old.get(c)]
    return Change(key, kind, identifier, new, old, row_hash, payload, fields, rn=rn)
