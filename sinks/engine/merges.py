"""Identity merges at the destinations. A people sync that declares `merges` (sinks/declarations.py) reads
the warehouse's merges (retired_key -> surviving_key); a retired key its destination still holds is carried
there as the destination allows (Destination.merge_mode), instead of simply exiting:

  merged   the step becomes kind 'merge', sent after every other step of the run and only once the survivor's
           write is in the state (the destination ignores a merge into a person it does not hold yet); the
           destination moves the retired record's history to the survivor and deletes it. One that must wait
           for its survivor exits the retired record meanwhile (`ready`)
  retired / exited   the retired record's exit (its remove step), recorded as the merge's outcome, with why
  adopted  the survivor now has the retired record's identifier: that record is the survivor's, history kept

Each outcome is written to relay.sync_merges with the acknowledgement that carried it, and the retired key's
state row goes in the same transaction (state.write): a merge is recorded once, never lost, never sent again
once recorded. The destination's other syncs find what they held at a merged-away identifier at the survivor
(`carry`), as the destination moved it there."""

import json

import duckdb

from sinks.declarations import SCOPE_KEY, SyncSpec
from sinks.destinations.base import Destination, json_path, sql_string
from sinks.engine.changes import key_sql, payload_sql, quote
from sinks.engine.result import RunResult, SyncRefused

OUTCOMES = {"merge": "merged", "retire": "retired", "exit": "exited"}
ADOPTED = "the survivor now has the retired record's identifier: one record, its history kept"


def plan(con: duckdb.DuckDBPyConnection, spec: SyncSpec, destination: Destination, r: RunResult,
         samples_per_kind: int) -> int:
    """After the diff: the removes of retired keys whose survivor is in the model become merges (_merges; with
    merge_mode 'merge', steps of kind 'merge' that carry the survivor's row). How many, for the guard."""
    if spec.merges is None:
        return 0
    key, outcome = key_sql(spec), OUTCOMES[destination.merge_mode]
    try:
        con.execute(f"select retired_key, surviving_key from {spec.merges} limit 0")
    except duckdb.CatalogException as exc:
        raise SyncRefused(f"{spec.name} declares merges from {spec.merges}, which is not in the warehouse (or has no "
                          "retired_key and surviving_key columns): run dbt build first") from exc
    con.execute(f"""
        create or replace temp table _merges as
        with retiring as (
            select c.rn, c.record_key, c.prev_identifier, cast(g.surviving_key as varchar) as surviving_key
            from _changes c join {spec.merges} g on cast(g.retired_key as varchar) = c.record_key
            where c.kind = 'remove' and not c.leaving
        ),
        survivors as (
            select {key} as record_key, cast(m.{quote(spec.identifier)} as varchar) as identifier,
                   {payload_sql(spec)} as payload
            from {spec.relation} m where {key} in (select surviving_key from retiring)
        )
        select t.rn, $sync as sync_name, $destination as destination, t.record_key as retired_key, t.surviving_key,
               t.prev_identifier as retired_identifier, s.identifier as surviving_identifier,
               s.payload as surviving_payload,
               if(t.prev_identifier = s.identifier, 'adopted', $outcome) as outcome,
               if(t.prev_identifier = s.identifier, $adopted, nullif($note, '')) as note
        from retiring t join survivors s on s.record_key = t.surviving_key
        where s.identifier is not null""",
                {"sync": spec.name, "destination": destination.name, "outcome": outcome, "adopted": ADOPTED,
                 "note": destination.merge_note})
    if outcome == "merged":
        con.execute("update _changes c set kind = 'merge', identifier = g.surviving_identifier, "
                    "payload = g.surviving_payload, row_hash = md5(g.surviving_payload) "
                    "from _merges g where c.rn = g.rn and g.outcome = 'merged'")
    counts = dict(con.execute("select outcome, count(*) from _merges group by 1 order by 1").fetchall())
    shown = con.execute("select retired_key, surviving_key, retired_identifier, surviving_identifier, outcome "
                        "from _merges order by rn limit ?", [samples_per_kind]).fetchall()
    r.plan["merges"] = {
        "mode": destination.merge_mode, "outcomes": counts, "note": destination.merge_note or None,
        "samples": [dict(zip(("retired_key", "surviving_key", "retired_identifier", "surviving_identifier",
                              "outcome"), row)) for row in shown]}
    return sum(counts.values())


def ready(con: duckdb.DuckDBPyConnection, spec: SyncSpec) -> int:
    """Before the merges are sent: those whose survivor the state does not hold at its identifier (its write
    was refused or not answered) wait for a later run. Meanwhile the retired record exits (a change to its exit
    values, which keeps its state row, so the merge still comes): an exit never waits, and the merge moves the
    history, not the attributes. How many wait."""
    waiting = """c.kind = 'merge' and not exists (
        select 1 from _merges g join relay.sync_state s on s.sync_name = $sync and s.record_key = g.surviving_key
            and s.identifier = g.surviving_identifier where g.rn = c.rn)"""
    count = con.execute("select count(*) from _changes c where " + waiting, {"sync": spec.name}).fetchone()[0]
    if count:
        exits = json.dumps({c: spec.exit_values.get(c) for c in spec.attribute_columns})  # null drops the key
        con.execute("update _changes c set kind = 'change', identifier = prev_identifier, "
                    "payload = json_merge_patch(prev_payload, $exits), "
                    "row_hash = md5(json_merge_patch(prev_payload, $exits)) where " + waiting,
                    {"sync": spec.name, "exits": exits})
    return count


def record(con: duckdb.DuckDBPyConnection, rns: list[int], run_id: str, at) -> None:
    """The merges these acknowledged steps carried (part of state.write's transaction). A merged-away record is
    gone: an earlier write to it of unknown fate is not re-asserted (that would create it again)."""
    params = {"rns": rns, "run": run_id, "now": at}
    con.execute("insert into relay.sync_merges select sync_name, destination, retired_key, surviving_key, "
                "retired_identifier, surviving_identifier, outcome, note, $run, $now from _merges "
                "where rn in (select unnest($rns))", params)
    con.execute("delete from relay.sync_unconfirmed u using _merges g where g.rn in (select unnest($rns)) "
                "and g.outcome = 'merged' and u.sync_name = g.sync_name and u.record_key = g.retired_key",
                {"rns": rns})


def mark_survivors(con: duckdb.DuckDBPyConnection, sync: str, rns: list[int], until) -> None:
    """A merge of unknown fate: a late copy of its survivor's re-assertion may still land, so the survivor (not
    the retired record, which is gone) is re-asserted once no copy can (see state._write_unconfirmed)."""
    con.execute("""
        insert into relay.sync_unconfirmed
        select distinct on (g.surviving_key) $sync, g.surviving_key, g.surviving_identifier, g.surviving_payload, $until
        from _merges g join _changes c using (rn)
        where c.kind = 'merge' and rn in (select unnest($rns))
        on conflict (sync_name, record_key, identifier) do update set
            payload = excluded.payload, resend_after = excluded.resend_after""",
                {"sync": sync, "rns": rns, "until": until})


def carry(con: duckdb.DuckDBPyConnection, spec: SyncSpec, destination: str) -> int:
    """Before a membership or events sync's diff: its state rows at an identifier a merge took away at this
    destination. A membership moved with the merge: its row now names the survivor (and goes where the survivor
    already held that row), so the diff removes it where the model does not keep it. An event stays sent: moved
    to the survivor by a merge, or kept by a retired or exited record; its row takes the model's current
    version, so a merge does not read as the event changing after it was sent. A plan carries too: the state
    then only says what the destination already holds. How many rows were carried."""
    outcomes = "('merged')" if spec.object == "membership" else "('merged', 'retired', 'exited')"
    new_key = "h.record_key"  # an event's id
    if spec.object == "membership":  # the survivor in place of the retired record in the key
        parts = ["h.surviving_identifier" if c == spec.identifier else "h.surviving_key" if c == SCOPE_KEY
                 else f"json_extract_string(h.payload, {sql_string(json_path(c))})" for c in spec.primary_key]
        new_key = parts[0] if len(parts) == 1 else f"cast(to_json([{', '.join(parts)}]) as varchar)"
    key = key_sql(spec)
    con.execute(f"""
        create or replace temp table _carried as
        with merged as (
            select retired_identifier, arg_max(surviving_key, recorded_at) as surviving_key,
                   arg_max(surviving_identifier, recorded_at) as surviving_identifier,
                   arg_max(outcome, recorded_at) as outcome
            from relay.sync_merges where destination = $destination and outcome in {outcomes} group by 1
        ),
        held as (
            select s.*, g.surviving_key, g.surviving_identifier, g.outcome
            from relay.sync_state s join merged g on g.retired_identifier = s.identifier
            where s.sync_name = $sync
        ),
        moved as (
            select record_key as old_key, {new_key} as record_key, identifier as old_identifier,
                   if(outcome = 'merged', surviving_identifier, identifier) as identifier, row_hash, payload,
                   first_synced_at, last_synced_at, last_run_id
            from held h
        ),
        model as (
            select {key} as record_key, {payload_sql(spec)} as payload from {spec.relation} m
            where {key} in (select record_key from moved)
        )
        select v.old_key, v.record_key, v.identifier, coalesce(md5(d.payload), v.row_hash) as row_hash,
               coalesce(d.payload, v.payload) as payload, v.first_synced_at, v.last_synced_at, v.last_run_id
        from moved v left join model d using (record_key)
        where v.record_key <> v.old_key or v.identifier <> v.old_identifier
           or coalesce(md5(d.payload), v.row_hash) <> v.row_hash""", {"sync": spec.name, "destination": destination})
    carried = con.execute("select count(*) from _carried").fetchone()[0]
    if carried:
        con.execute("begin")
        con.execute("delete from relay.sync_state where sync_name = $sync and record_key in "
                    "(select old_key from _carried)", {"sync": spec.name})
        con.execute("""
            insert into relay.sync_state by name
            select $sync as sync_name, record_key, identifier, row_hash, payload, first_synced_at, last_synced_at,
                   last_run_id
            from _carried c
            where not exists (select 1 from relay.sync_state s where s.sync_name = $sync and s.record_key = c.record_key)
            qualify row_number() over (partition by record_key order by old_key) = 1""", {"sync": spec.name})
        con.execute("commit")
    return carried
