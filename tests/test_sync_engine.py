"""The sync engine against a destination emulator over real HTTP on loopback.

Sync models here are plain tables in a real DuckDB warehouse (no dbt needed to exercise the engine);
the destination's own state, read back from the emulator, is the oracle."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict

import duckdb
import httpx
import pytest

from sinks import destinations
from sinks.declarations import SyncSpec
from sinks.emulators.base import EmulatorServer, RateLimit
from sinks.emulators.customerio import CustomerIO, CustomerIOConfig
from sinks.engine import SyncRun

SITE, TRACK_KEY, APP_KEY = "site-7f3a", "trk-SECRET-9c1d2e3f4a5b", "app-SECRET-77aa88bb99cc"

PEOPLE = SyncSpec(
    name="sync_test__people", relation="syncs.people", destination="customerio", object="attributes",
    primary_key=("customer_key",), identifier="customer_key", on_exit="clear", schedule="frequent",
    columns={"customer_key": "varchar", "email": "varchar", "orders_count": "bigint",
             "last_order_at": "bigint", "vip_tier": "varchar"},
)
MEMBERS = SyncSpec(
    name="sync_test__members", relation="syncs.members", destination="customerio", object="membership",
    primary_key=("customer_key", "audience"), identifier="customer_key", on_exit="remove", schedule="frequent",
    columns={"customer_key": "varchar", "audience": "varchar"},
)


@pytest.fixture
def cio(monkeypatch):
    config = CustomerIOConfig(site_id=SITE, track_api_key=TRACK_KEY, app_api_key=APP_KEY, port=0,
                              rate_limits={"track": RateLimit(0), "app": RateLimit(0)})
    with EmulatorServer(CustomerIO(config).app()) as server:
        for var, value in {"CUSTOMERIO_TRACK_URL": server.url, "CUSTOMERIO_APP_URL": server.url,
                           "CUSTOMERIO_SITE_ID": SITE, "CUSTOMERIO_TRACK_API_KEY": TRACK_KEY,
                           "CUSTOMERIO_APP_API_KEY": APP_KEY}.items():
            monkeypatch.setenv(var, value)
        yield server


def people_rows(n: int, start: int = 0) -> list[tuple]:
    return [(f"c{i:06d}", f"person{i}@example.com", i % 7, 1_700_000_000 + i, ["none", "silver", "gold"][i % 3])
            for i in range(start, start + n)]


def write_people(warehouse, rows) -> None:
    con = duckdb.connect(str(warehouse))
    con.execute("create schema if not exists syncs")
    con.execute("create or replace table syncs.people (customer_key varchar, email varchar, orders_count bigint, "
                "last_order_at bigint, vip_tier varchar)")
    if rows:
        con.executemany("insert into syncs.people values (?, ?, ?, ?, ?)", rows)
    con.close()


def write_members(warehouse, rows) -> None:
    con = duckdb.connect(str(warehouse))
    con.execute("create schema if not exists syncs")
    con.execute("create or replace table syncs.members (customer_key varchar, audience varchar)")
    if rows:
        con.executemany("insert into syncs.members values (?, ?)", rows)
    con.close()


def sync(spec, warehouse, **kwargs):
    return SyncRun(spec, destinations.build("customerio"), warehouse, **kwargs).execute()


def requests_made(server) -> int:
    return server.emulator.stats.requests


def held(server) -> dict[str, dict]:
    """What the destination holds: id -> attributes (Customer.io keeps `email` as an identifier)."""
    return {p["id"]: {**({"email": p["email"]} if "email" in p else {}), **p["attributes"]}
            for p in server.state.people.values() if "id" in p}


def expected(rows) -> dict[str, dict]:
    cols = [c for c in PEOPLE.columns if c != "customer_key"]
    return {r[0]: {c: v for c, v in zip(cols, r[1:]) if v is not None} for r in rows}


def query(warehouse, sql, params=()):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def test_first_sync_sends_all_and_unchanged_rerun_sends_nothing(cio, warehouse):
    rows = people_rows(2500)
    write_people(warehouse, rows)
    first = sync(PEOPLE, warehouse)
    assert (first.status, first.acked_add, first.rejected) == ("succeeded", 2500, 0)
    assert held(cio) == expected(rows)
    before = requests_made(cio)
    second = sync(PEOPLE, warehouse)
    assert (second.status, second.planned, second.requests) == ("succeeded", 0, 0)
    assert requests_made(cio) == before
    assert query(warehouse, "select count(*) from relay.sync_state where sync_name = ?", [PEOPLE.name]) == [(2500,)]


def test_a_changed_attribute_sends_only_that_row_and_field(cio, warehouse):
    rows = people_rows(300)
    write_people(warehouse, rows)
    sync(PEOPLE, warehouse)
    rows[42] = rows[42][:2] + (99,) + rows[42][3:]
    write_people(warehouse, rows)
    items_before = cio.emulator.stats.items["POST /api/v2/batch"]
    result = sync(PEOPLE, warehouse)
    assert (result.planned_change, result.acked_change, result.requests) == (1, 1, 1)
    assert cio.emulator.stats.items["POST /api/v2/batch"] - items_before == 1
    assert held(cio)["c000042"]["orders_count"] == 99
    assert query(warehouse, "select kind, fields from relay.sync_deliveries where run_id = ?", [result.run_id]) == [
        ("change", ["orders_count"])]


def test_null_clears_an_attribute_and_exit_clears_all(cio, warehouse):
    rows = people_rows(10)
    write_people(warehouse, rows)
    sync(PEOPLE, warehouse)
    rows[1] = rows[1][:4] + (None,)
    write_people(warehouse, rows[:9])  # c000009 leaves the model
    result = sync(PEOPLE, warehouse)
    assert (result.acked_change, result.acked_remove) == (1, 1)
    assert "vip_tier" not in held(cio)["c000001"]
    # Every attribute is cleared; the email stays, as an identifier of the person, not an attribute.
    assert set(held(cio)["c000009"]) == {"email"}
    assert query(warehouse, "select count(*) from relay.sync_state where record_key = 'c000009'") == [(0,)]


def test_membership_enters_and_exits(cio, warehouse):
    write_members(warehouse, [("c1", "wh_cart_0_4h"), ("c2", "wh_cart_0_4h"), ("c2", "wh_vip")])
    write_people(warehouse, [("c1", None, 1, 1, None), ("c2", None, 1, 1, None)])
    sync(PEOPLE, warehouse)
    first = sync(MEMBERS, warehouse)
    assert (first.status, first.acked_add) == ("succeeded", 3)
    segments = {s["name"]: s for s in cio.state.to_json()["segments"].values()}
    ids = {cio_id: p["id"] for cio_id, p in cio.state.people.items()}
    assert {ids[m] for m in segments["wh_cart_0_4h"]["members"]} == {"c1", "c2"}
    write_members(warehouse, [("c2", "wh_vip")])
    second = sync(MEMBERS, warehouse)
    assert (second.acked_remove, second.acked_add) == (2, 0)
    segments = {s["name"]: s for s in cio.state.to_json()["segments"].values()}
    assert segments["wh_cart_0_4h"]["members"] == []
    # Setup is idempotent: the segments were created once, then looked up.
    assert len(segments) == 2
    assert len(query(warehouse, "select * from relay.destination_objects")) == 2


def test_rejected_rows_are_recorded_and_retried_without_blocking_the_rest(cio, warehouse):
    rows = people_rows(50)
    rows[7] = rows[7][:4] + ("x" * 1500,)  # over Customer.io's 1000-byte attribute value limit
    rows[9] = ("k" * 200,) + rows[9][1:]  # identifier over 150 bytes
    write_people(warehouse, rows)
    result = sync(PEOPLE, warehouse)
    assert (result.status, result.acked_add, result.rejected) == ("partial", 48, 2)
    reasons = dict(query(warehouse, "select record_key, reason from relay.sync_rejections"))
    assert "1000 bytes" in reasons["c000007"] and "k" * 200 in reasons
    assert "c000007" not in held(cio)
    rows[7] = rows[7][:4] + ("gold",)
    write_people(warehouse, rows)
    retry = sync(PEOPLE, warehouse)
    assert (retry.planned_add, retry.acked_add, retry.rejected) == (2, 1, 1)
    assert held(cio)["c000007"]["vip_tier"] == "gold"


def test_5xx_429_and_dropped_connections_are_retried_without_loss(cio, warehouse):
    rows = people_rows(3000)
    write_people(warehouse, rows)
    httpx.post(f"{cio.url}/_emulator/faults", json={
        "error_rate": 0.25, "drop_rate": 0.05, "seed": 7, "rate_limits": {"track": {"limit": 20}}})
    os.environ["RELAY_CONCURRENCY"] = "4"
    try:
        # Small batches so there are enough requests to meet every fault.
        import sinks.destinations.customerio as cio_module
        limit = cio_module.MAX_BATCH_BYTES
        cio_module.MAX_BATCH_BYTES = 8 * 1024
        result = sync(PEOPLE, warehouse)
    finally:
        cio_module.MAX_BATCH_BYTES = limit
        del os.environ["RELAY_CONCURRENCY"]
    statuses = cio.emulator.stats.by_status
    assert statuses["500"] + statuses["502"] + statuses["503"] + statuses["504"] > 0
    assert statuses["dropped"] > 0
    assert result.retries > 0
    assert (result.status, result.acked_add) == ("succeeded", 3000)
    assert held(cio) == expected(rows)


def test_duplicate_keys_refuse_the_run(cio, warehouse):
    rows = people_rows(5)
    write_people(warehouse, rows + [rows[2]])
    result = sync(PEOPLE, warehouse)
    assert result.status == "refused" and "duplicate primary keys" in result.message and "c000002" in result.message
    assert requests_made(cio) == 0


def test_blast_radius_guard_refuses_until_approved(cio, warehouse):
    rows = people_rows(400)
    write_people(warehouse, rows)
    sync(PEOPLE, warehouse)
    write_people(warehouse, rows[:200])  # half the customers vanish: a broken model, most likely
    refused = sync(PEOPLE, warehouse)
    assert refused.status == "refused" and "blast-radius" in refused.message
    assert len(held(cio)["c000300"]) > 0
    approved = sync(PEOPLE, warehouse, allow_large_change=True)
    assert (approved.status, approved.acked_remove) == ("succeeded", 200)


def test_plan_records_samples_and_sends_nothing(cio, warehouse):
    write_people(warehouse, people_rows(20))
    plan = sync(PEOPLE, warehouse, apply=False)
    assert (plan.status, plan.planned_add) == ("planned", 20)
    assert len(plan.plan["samples"]["add"]) == 3
    assert requests_made(cio) == 0
    assert query(warehouse, "select count(*) from relay.sync_state") == [(0,)]
    assert query(warehouse, "select status from relay.sync_runs") == [("planned",)]


def test_full_resync_resends_everything(cio, warehouse):
    write_people(warehouse, people_rows(30))
    sync(PEOPLE, warehouse)
    result = sync(PEOPLE, warehouse, full_resync=True)
    assert (result.planned_change, result.acked_change) == (30, 30)


def test_wrong_credentials_fail_the_run_without_rejecting_rows(cio, warehouse, monkeypatch):
    write_people(warehouse, people_rows(10))
    monkeypatch.setenv("CUSTOMERIO_TRACK_API_KEY", "wrong-key-123456")
    result = sync(PEOPLE, warehouse)
    assert result.status == "failed" and "HTTP 401" in result.message and "CUSTOMERIO_TRACK_API_KEY" in result.message
    assert "wrong-key-123456" not in result.message
    assert query(warehouse, "select count(*) from relay.sync_rejections") == [(0,)]


def test_no_secret_reaches_logs_or_ledger(cio, warehouse, caplog):
    caplog.set_level(logging.DEBUG)
    rows = people_rows(100)
    rows[3] = rows[3][:4] + ("y" * 2000,)
    write_people(warehouse, rows)
    httpx.post(f"{cio.url}/_emulator/faults", json={"error_rate": 0.3, "seed": 3})
    sync(PEOPLE, warehouse)
    con = duckdb.connect(str(warehouse), read_only=True)
    dump = "".join(str(con.execute(f"select * from relay.{t}").fetchall())
                   for t in ("sync_runs", "sync_rejections", "sync_deliveries", "sync_state", "destination_objects"))
    con.close()
    for secret in (TRACK_KEY, APP_KEY):
        assert secret not in caplog.text and secret not in dump


KILL_SCRIPT = """
import json, sys
from sinks import destinations
from sinks.declarations import SyncSpec
from sinks.engine import SyncRun
spec = json.loads(sys.argv[1]); spec = SyncSpec(**{**spec, "primary_key": tuple(spec["primary_key"])})
SyncRun(spec, destinations.build(spec.destination), sys.argv[2]).execute()
"""


def test_killed_sync_resumes_without_loss(cio, warehouse):
    rows = people_rows(20_000)
    write_people(warehouse, rows)
    httpx.post(f"{cio.url}/_emulator/faults", json={"latency_ms": 40})
    env = {**os.environ, "RELAY_CONCURRENCY": "2"}
    kills = 0
    for _ in range(3):
        process = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, json.dumps(asdict(PEOPLE)), str(warehouse)],
                                   env=env)
        deadline = time.monotonic() + 60
        while cio.emulator.stats.items["POST /api/v2/batch"] < (kills + 1) * 3000 and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        # Whatever the state claims, the destination holds: never more claimed than delivered.
        claimed = query(warehouse, "select record_key, payload from relay.sync_state")
        destination = held(cio)
        for key, payload in claimed:
            want = {k: v for k, v in json.loads(payload).items() if k != "customer_key" and v is not None}
            assert destination[key] == want
    assert kills >= 2
    httpx.post(f"{cio.url}/_emulator/faults", json={"latency_ms": 0})
    final = sync(PEOPLE, warehouse)
    assert final.status == "succeeded"
    assert held(cio) == expected(rows)
    assert query(warehouse, "select count(*) from relay.sync_state") == [(20_000,)]
    assert query(warehouse, "select count(*) from relay.sync_runs where status = 'abandoned'")[0][0] >= 1
