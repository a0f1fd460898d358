"""Customer.io's event entries: the bulk path (entries made in SQL over the plan) and the per-change path
make the same entry, id included, so a resend by the other path is still a repeat Customer.io drops."""

import json

import duckdb
import pytest

from sinks.declarations import EventOptions, SyncSpec
from sinks.destinations.customerio import CustomerIO, _event
from sinks.engine.changes import STEP_COLUMNS, key_sql, payload_sql, to_change

COLUMNS = {"event_id": "varchar", "customer_key": "varchar", "event_name": "varchar", "occurred_at": "timestamp",
           "consented": "boolean", "order_total": "double", "recovery_url": "varchar"}


@pytest.mark.parametrize("time_type, times", [
    ("timestamp", ["2026-11-01 12:00:00.001", "2026-11-01 12:00:00.999999", "2001-09-09 01:46:40"]),
    ("timestamptz", ["2026-11-01 12:00:00.001+02", "2026-11-01 23:59:59.5-05"]),
    ("double", [1793534400.001, 1793534400.999, 1793534400.0]),
])
def test_customerio_sends_an_event_the_same_by_either_path(time_type, times):
    events = SyncSpec(name="sync_test__events", relation="syncs.events", destination="customerio", object="events",
                      primary_key=("event_id",), identifier="customer_key", on_exit="keep", schedule="frequent",
                      columns={**COLUMNS, "occurred_at": time_type},
                      events=EventOptions(name_column="event_name", time_column="occurred_at", max_age_s=None,
                                          backfill_s=None, consent_column="consented"))
    bulk = CustomerIO.__new__(CustomerIO).bulk(events)
    con = duckdb.connect()
    con.execute("set TimeZone = 'America/New_York'")  # a session zone other than UTC must not shift times
    columns = ", ".join(f'"{c}" {t}' for c, t in events.columns.items())
    con.execute(f"create table m ({columns})")
    for i, at in enumerate(times):
        con.execute("insert into m values (?, ?, ?, ?, true, ?, ?)",
                    [f"e:{i}", f"c{i}", "Ünïcode \"name\"", at, None if i else 1.5, f"https://shop/r/{i}"])
    con.execute(f"""create table _changes as select row_number() over () as rn, {key_sql(events)} as record_key,
                    'add' as kind, m.customer_key as identifier, null as prev_identifier, {payload_sql(events)} as payload,
                    null::json as prev_payload, 'h' as row_hash, false as leaving from m""")
    for step, entry in zip(con.execute(f"select {STEP_COLUMNS} from _changes order by rn").fetchall(),
                           con.execute(f"select {bulk.entry} from _changes c order by rn").fetchall()):
        assert json.loads(entry[0]) == _event(events, to_change(events, step))
