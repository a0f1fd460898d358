"""Planning an events sync. Events are facts, so the plan differs from an attribute sync's (plan.py):
  - append only: an event the destination acknowledged is never sent again, and one that leaves the model
    is not retracted;
  - an event whose row changed after it was acknowledged is recorded in relay.sync_rejections (once, kind
    'change') and counted in the plan, not resent;
  - an event too old when first seen (max_event_age, by the data clock), older than the backfill window of
    the sync's first run, or without consent is recorded in relay.sync_skipped and never sent;
  - the diff always covers the whole model (new events can be anyone's)."""

from datetime import timedelta
from pathlib import Path

import duckdb

from sinks.declarations import SyncSpec
from sinks.destinations.base import Destination, column_kind
from sinks.engine import merges, scope
from sinks.engine.changes import key_sql, payload_sql, quote
from sinks.engine.ledger import now
from sinks.engine.plan import Plan, samples
from sinks.engine.result import RunResult, SyncRefused

EVENTS_DIFF_SQL = Path(__file__).with_name("events_diff.sql").read_text()
UNKNOWN_FATE = ("unknown fate: a request carrying it may have reached {destination}, which does not deduplicate "
                "events, and was not acknowledged; held, not resent")
CHANGED = ("event changed after {destination} acknowledged it: events are facts, so it is not sent again "
           "(a changed event needs a new event_id)")


def diff_sql(spec: SyncSpec) -> list[str]:
    """The two statements of events_diff.sql: _events (which takes the parameters), then _changes."""
    options = spec.events
    column = f"m.{quote(options.time_column)}"
    numeric = column_kind(spec.columns[options.time_column]) == "number"  # Unix seconds
    clock = f"select cast(max({quote(spec.clock[1])}) as timestamp) from {spec.clock[0]}" if spec.clock else "null"
    return EVENTS_DIFF_SQL.format(
        key=key_sql(spec), identifier=f"cast(m.{quote(spec.identifier)} as varchar)", payload=payload_sql(spec),
        relation=spec.relation,
        occurred_at=f"cast(to_timestamp({column}) as timestamp)" if numeric else f"cast({column} as timestamp)",
        consented=f"m.{quote(options.consent_column)}" if options.consent_column else "true",
        name=f"m.{quote(options.name_column)}", clock=clock,
        max_age_s="null" if options.max_age_s is None else options.max_age_s,
        backfill_s="null" if options.backfill_s is None else options.backfill_s,
    ).split(";\n\n")


def make_plan(con: duckdb.DuckDBPyConnection, spec: SyncSpec, destination: Destination, r: RunResult, *,
              apply: bool, full_resync: bool, samples_per_kind: int) -> Plan:
    """The events to send into _changes; in an apply, the skipped and changed ones recorded in the ledger."""
    if full_resync:
        raise SyncRefused(f"{spec.name} is an events sync: events are sent once, so it cannot be resynced in full")
    carried = merges.carry(con, spec, destination.name)  # events a merge moved, or re-attributed
    r.state_rows = con.execute("select count(*) from relay.sync_state where sync_name = ?", [spec.name]).fetchone()[0]
    planned_at = now()
    first = not r.state_rows and not con.execute(
        "select count(*) from relay.sync_skipped where sync_name = ?", [spec.name]).fetchone()[0]
    try:
        events, changes = diff_sql(spec)
        con.execute(events, {"sync": spec.name, "now": planned_at, "first": first})
        con.execute(changes)
    except duckdb.ConversionException as exc:
        raise SyncRefused(f"sync model {spec.relation}: column {spec.events.time_column!r} does not read as a time: {exc}") from exc
    r.planned_add = con.execute("select count(*) from _changes").fetchone()[0]
    skipped = dict(con.execute("select skip_reason, count(*) from _events where sent_hash is null "
                               "and skip_reason is not null group by 1").fetchall())
    r.skipped += sum(skipped.values())
    changed = con.execute(
        "select record_key, identifier from _events e where sent_hash is not null and not exists "
        "(select 1 from relay.sync_rejections j where j.sync_name = $sync and j.record_key = e.record_key "
        "and j.kind = 'change') order by record_key", {"sync": spec.name}).fetchall()
    unaddressable = [k for (k,) in con.execute(
        "select record_key from _changes where identifier is null order by rn").fetchall()]
    r.plan = {
        **r.plan,
        "counts": {"add": r.planned_add, "change": 0, "remove": 0},
        "events": dict(con.execute("select event_name, count(*) from _events where sent_hash is null and "
                                   "skip_reason is null group by 1 order by 1").fetchall()),
        "skipped": skipped, "changed_after_sent": len(changed), "first_sync": first,
        "on_exit": spec.on_exit, "null_identifier_rows": len(unaddressable), "carried_by_merges": carried,
        "samples": samples(con, spec, destination, frozenset(), False, samples_per_kind),
        "diff": "everything: events are append-only", "build": None, "spec": scope.fingerprint(spec),
    }
    if apply:
        _record(con, spec, r, changed, destination.name, planned_at)
    return Plan(planned_at, frozenset(), unaddressable)


def _record(con: duckdb.DuckDBPyConnection, spec: SyncSpec, r: RunResult, changed: list, destination: str, at) -> None:
    """Skipped events, and events that changed after they were sent, written before anything is sent."""
    con.execute("begin")
    con.execute("""
        insert into relay.sync_skipped
        select $sync, record_key, identifier, event_name, occurred_at, skip_reason, $run, $now
        from _events where sent_hash is null and skip_reason is not null""",
                {"sync": spec.name, "run": r.run_id, "now": at})
    if changed:
        con.execute("insert into relay.sync_rejections select $run, $sync, unnest($keys), unnest($ids), 'change', "
                    "null, $reason, $now",
                    {"run": r.run_id, "sync": spec.name, "keys": [k for k, _ in changed], "ids": [i for _, i in changed],
                     "reason": CHANGED.format(destination=destination), "now": at})
    con.execute("commit")


def journal_in_flight(con: duckdb.DuckDBPyConnection, sync: str, run_id: str, rns: list[int]) -> None:
    """Events about to be sent (steps of _changes), committed before their requests go out."""
    con.execute("insert into relay.sync_in_flight select $sync, record_key, $run, $now, null from _changes "
                "where rn in (select unnest($rns))", {"sync": sync, "run": run_id, "now": now(), "rns": rns})


def release_in_flight(con: duckdb.DuckDBPyConnection, sync: str, rns: list[int]) -> None:
    """Events no longer in flight: answered, or journaled and never sent (the run stopped early)."""
    con.execute("delete from relay.sync_in_flight where sync_name = $sync and record_key in "
                "(select record_key from _changes where rn in (select unnest($rns)))", {"sync": sync, "rns": rns})


async def settle_unknown(con: duckdb.DuckDBPyConnection, spec: SyncSpec, destination: Destination,
                         r: RunResult, window_s: float) -> None:
    """Before planning, for a destination that keeps repeated events: settle the events of unknown fate
    (journaled, never answered). Once no stalled copy can land any more (`window_s` after the lost answer,
    or after the journal entry when the run died first), the destination is asked which it holds: those are acknowledged by the answer, the rest
    never landed and are planned like new ones. Younger ones wait, out of the plan. A destination that cannot
    be asked gets them held at once (hold_unknown)."""
    unknown = con.execute(f"""
        select f.record_key, cast(m.{quote(spec.identifier)} as varchar), cast(m.{quote(spec.events.name_column)} as varchar),
               min(f.sent_at), max(coalesce(f.unknown_at, f.sent_at))
        from relay.sync_in_flight f
        join {spec.relation} m on {key_sql(spec)} = f.record_key
        where f.sync_name = $sync and f.record_key not in (select record_key from relay.sync_state where sync_name = $sync)
        group by all order by 1""", {"sync": spec.name}).fetchall()
    if not unknown:
        return
    if not destination.can_look_up_events():
        r.plan["unknown_fate"] = hold_unknown(con, spec, r, destination.name, now())
        return
    due = now() - timedelta(seconds=window_s)
    waiting = [u for u in unknown if u[4] > due]
    unknown = [u[:4] for u in unknown if u[4] <= due]
    r.plan["unknown_fate_waiting"] = len(waiting)
    if not unknown:
        return
    async with destination.open_client() as client:
        landed = await destination.landed_events(spec, client, unknown)
    at = now()
    con.execute("begin")
    con.execute(f"""
        insert into relay.sync_state by name
        select $sync as sync_name, record_key, identifier, md5(payload) as row_hash, payload,
               $now as first_synced_at, $now as last_synced_at, $run as last_run_id
        from (select {key_sql(spec)} as record_key, cast(m.{quote(spec.identifier)} as varchar) as identifier,
                     {payload_sql(spec)} as payload from {spec.relation} m)
        where record_key in (select unnest($landed))""",
                {"sync": spec.name, "now": at, "run": r.run_id, "landed": sorted(landed)})
    con.execute("insert into relay.sync_deliveries select $run, $sync, record_key, identifier, 'add', null, $now "
                "from relay.sync_state where sync_name = $sync and last_run_id = $run",
                {"run": r.run_id, "sync": spec.name, "now": at})
    con.execute("delete from relay.sync_in_flight where sync_name = $sync and record_key in (select unnest($keys))",
                {"sync": spec.name, "keys": [k for k, *_ in unknown]})
    con.execute("commit")
    r.plan["unknown_fate_checked"] = {"landed": len(landed), "not_landed": len(unknown) - len(landed)}


def hold_unknown(con: duckdb.DuckDBPyConnection, spec: SyncSpec, r: RunResult, destination: str, at) -> int:
    """Events a run journaled as in flight that were neither acknowledged nor refused (it crashed, or their
    request's fate is unknown): they may have landed, and the destination would not drop a second copy, so
    they are recorded as skipped instead of sent again. Their marks are settled either way."""
    con.execute("begin")
    held = con.execute(f"""
        insert into relay.sync_skipped
        select distinct on (f.record_key) $sync, f.record_key, cast(m.{quote(spec.identifier)} as varchar),
               cast(m.{quote(spec.events.name_column)} as varchar), null, $reason, $run, $now
        from relay.sync_in_flight f
        left join {spec.relation} m on {key_sql(spec)} = f.record_key
        where f.sync_name = $sync
          and f.record_key not in (select record_key from relay.sync_state where sync_name = $sync)
          and f.record_key not in (select record_key from relay.sync_skipped where sync_name = $sync)""",
                       {"sync": spec.name, "reason": UNKNOWN_FATE.format(destination=destination), "run": r.run_id,
                        "now": at}).fetchone()[0]
    con.execute("delete from relay.sync_in_flight where sync_name = ?", [spec.name])
    con.execute("commit")
    r.skipped += held
    return held
