"""The sync engine against each destination's emulator over real HTTP on loopback: one behavioural suite,
run for Customer.io, Cordial and Talon.One.

Sync models here are plain tables in a real DuckDB warehouse (no dbt needed to exercise the engine); the
destination's own state, read back from its emulator, is the oracle. Everything that differs between
destinations (server, credentials, specs, how to read what it holds, what "cleared" looks like there)
lives in its harness class (support/harnesses.py); the tests are written once."""

import json
import logging
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import duckdb
import httpx
import pytest

import sinks.destinations.talon_one as talon_one_adapter
import vendor_schemas
from sinks.declarations import SCOPE_LOG, SyncSpec
from sinks.destinations.base import Batch, Change, SetupError, SplitBatch
from sinks.engine import SyncRefused
from sinks.http import HttpClient
from support.harnesses import (
    HARNESSES, CordialHarness, CustomerIOHarness, TalonOneHarness, member, people_rows, person,
)
from support.sync_process import sync_command
from support.warehouse import query, write_table


@pytest.fixture(params=list(HARNESSES))
def h(request, monkeypatch):
    with HARNESSES[request.param](monkeypatch) as harness:
        yield harness


@pytest.fixture
def small_batches(h, monkeypatch):
    if h.small_batch:
        monkeypatch.setattr(*h.small_batch)


# ------------------------------------------------------------------------------------------ the suite
def test_first_sync_sends_all_and_unchanged_rerun_sends_nothing(h, warehouse):
    rows = people_rows(1000)
    h.write_people(warehouse, rows)
    first = h.sync(h.people, warehouse)
    assert (first.status, first.acked_add, first.rejected) == ("succeeded", 1000, 0)
    assert h.held() == h.expected(rows)
    before = h.requests()
    second = h.sync(h.people, warehouse)
    assert (second.status, second.planned, second.requests) == ("succeeded", 0, 0)
    assert h.requests() == before
    assert query(warehouse, "select count(*) from relay.sync_state where sync_name = ?", [h.people.name]) == [(1000,)]


def test_a_changed_attribute_sends_only_that_row_and_field(h, warehouse):
    rows = people_rows(300)
    h.write_people(warehouse, rows)
    h.sync(h.people, warehouse)
    state = "select record_key, first_synced_at, last_run_id, payload ->> 'orders_count' from relay.sync_state order by 1"
    before = query(warehouse, state)
    rows[42]["orders_count"] = 99
    h.write_people(warehouse, rows)
    items_before = h.items()
    result = h.sync(h.people, warehouse)
    assert (result.planned_change, result.acked_change, result.requests) == (1, 1, 1)
    assert h.items() - items_before == 1
    assert h.held()[h.id_of(rows[42])]["orders_count"] == 99
    assert query(warehouse, "select kind, fields from relay.sync_deliveries where run_id = ?", [result.run_id]) == [
        ("change", ["orders_count"])]
    # The state holds one row per key; the changed one is this run's, first synced when it was.
    after = query(warehouse, state)
    assert len(after) == 300 and [r for r in after if r != before[after.index(r)]] == [
        (before[42][0], before[42][1], result.run_id, "99")]


def test_null_clears_an_attribute_and_exit_clears_as_declared(h, warehouse):
    rows = people_rows(10)
    h.write_people(warehouse, rows)
    h.sync(h.people, warehouse)
    rows[1]["vip_tier"] = None
    h.write_people(warehouse, rows[:9])  # c000009 leaves the model
    result = h.sync(h.people, warehouse)
    assert (result.acked_change, result.acked_remove) == (1, 1)
    held = h.held()
    assert held[h.id_of(rows[1])].get("vip_tier") == h.unset
    assert held[h.id_of(rows[9])] == h.exited(rows[9])
    assert query(warehouse, "select count(*) from relay.sync_state where record_key = 'c000009'") == [(0,)]


def test_membership_enters_and_exits(h, warehouse):
    cart, vip = h.audiences
    h.write_people(warehouse, people_rows(3))
    h.sync(h.people, warehouse)
    h.write_members(warehouse, [member(1, cart), member(2, cart), member(2, vip)])
    first = h.sync(h.members, warehouse)
    assert (first.status, first.acked_add) == ("succeeded", 3)
    one, two = h.id_of(person(1)), h.id_of(person(2))
    assert h.held_members() == {cart: {one, two}, vip: {two}}
    h.write_members(warehouse, [member(2, vip)])
    second = h.sync(h.members, warehouse)
    assert (second.acked_remove, second.acked_add) == (2, 0)
    assert h.held_members() == {cart: set(), vip: {two}}


def test_setup_is_idempotent_even_after_a_registry_wipe(h, warehouse):
    cart, vip = h.audiences
    rows = people_rows(5)
    h.write_people(warehouse, rows)
    h.write_members(warehouse, [member(1, cart), member(2, vip)])
    for _ in range(2):
        assert h.sync(h.people, warehouse).status == "succeeded"
        assert h.sync(h.members, warehouse).status == "succeeded"
        # Forget every id kept for the destination, and change a row so setup runs again.
        con = duckdb.connect(str(warehouse))
        con.execute("delete from relay.destination_objects")
        con.close()
        rows[0]["orders_count"] += 1
        h.write_people(warehouse, rows)
        h.write_members(warehouse, [member(1, cart), member(2, vip), member(3, cart)])
    assert h.sync(h.people, warehouse).status == "succeeded"
    assert h.sync(h.members, warehouse).status == "succeeded"
    objects = h.objects()
    assert {cart, vip} <= set(objects) and max(objects.values()) == 1
    assert h.held_members()[cart] == {h.id_of(person(1)), h.id_of(person(3))}


def test_adds_built_in_the_warehouse_arrive_as_the_row_by_row_path_sends_them(h, warehouse, monkeypatch):
    """A first sync's adds go as entries made in SQL (Destination.bulk), not through Python per row: awkward
    text and unset attributes must arrive exactly as the row-by-row path sends them."""
    monkeypatch.setenv("CORDIAL_IMPORT_MIN_ROWS", "1")  # Cordial's bulk path is its import
    tiers = ['a "quoted", tier', "two\nlines", "ünïcødé ✓ 🚀", None, "back\\slash", "'single'"]
    rows = [{**person(i), "vip_tier": tiers[i % len(tiers)], "orders_count": None if i % 4 == 0 else i * 1000}
            for i in range(60)]
    h.write_people(warehouse, rows)
    first = h.sync(h.people, warehouse)
    assert (first.status, first.acked_add, first.rejected) == ("succeeded", 60, 0)
    assert h.held() == h.expected(rows)
    assert h.stats()["by_route"].get("POST /v2/contacts", 0) == 0  # Cordial: one import, no contact writes
    assert query(warehouse, "select count(*), count(distinct record_key) from relay.sync_deliveries") == [(60, 60)]
    assert h.sync(h.people, warehouse).planned == 0


def test_rejected_rows_are_recorded_and_retried_without_blocking_the_rest(h, warehouse):
    rows = people_rows(50)
    good = dict(rows[7])
    rows[7].update(h.poison)
    h.write_people(warehouse, rows)
    result = h.sync(h.people, warehouse)
    assert (result.status, result.acked_add, result.rejected) == ("partial", 49, 1)
    reasons = dict(query(warehouse, "select record_key, reason from relay.sync_rejections"))
    assert list(reasons) == ["c000007"] and h.poison_reason in reasons["c000007"]
    assert h.held() == h.expected(rows[:7] + rows[8:])
    rows[7] = good
    h.write_people(warehouse, rows)
    retry = h.sync(h.people, warehouse)
    assert (retry.planned_add, retry.acked_add, retry.rejected) == (1, 1, 0)
    assert h.held() == h.expected(rows)


def test_5xx_429_and_dropped_connections_are_retried_without_loss(h, warehouse, small_batches, monkeypatch):
    rows = people_rows(h.fault_rows)
    h.write_people(warehouse, rows)
    # Injected 429s, not the emulator's own limit (test_emulators): whether a client meets that depends on how
    # fast this machine sends, and every attempt a 429 adds is one more chance of a failure.
    h.faults(error_rate=0.2, drop_rate=0.08, throttle_rate=0.05, seed=7)
    monkeypatch.setenv("RELAY_CONCURRENCY", "4")
    result = h.sync(h.people, warehouse)
    statuses = h.stats()["by_status"]
    assert sum(statuses.get(s, 0) for s in ("500", "502", "503", "504")) > 0
    assert statuses.get("dropped", 0) > 0 and statuses.get("429", 0) > 0
    assert result.retries > 0 and result.throttled > 0
    assert (result.status, result.acked_add) == ("succeeded", h.fault_rows)
    assert h.held() == h.expected(rows)


def test_duplicate_keys_refuse_the_run(h, warehouse):
    rows = people_rows(5)
    h.write_people(warehouse, rows + [rows[2]])
    result = h.sync(h.people, warehouse)
    assert result.status == "refused" and "duplicate primary keys" in result.message and "c000002" in result.message
    assert h.requests() == 0


def test_blast_radius_guard_refuses_until_approved(h, warehouse):
    rows = people_rows(400)
    h.write_people(warehouse, rows)
    h.sync(h.people, warehouse)
    h.write_people(warehouse, rows[:200])  # half the customers vanish: a broken model, most likely
    before = h.requests()
    refused = h.sync(h.people, warehouse)
    assert refused.status == "refused" and "blast-radius" in refused.message
    assert h.requests() == before
    assert h.held()[h.id_of(rows[300])] == h.expected([rows[300]])[h.id_of(rows[300])]
    approved = h.sync(h.people, warehouse, allow_large_change=True)
    assert (approved.status, approved.acked_remove) == ("succeeded", 200)


def test_plan_records_samples_and_sends_nothing(h, warehouse):
    h.write_people(warehouse, people_rows(20))
    plan = h.sync(h.people, warehouse, apply=False)
    assert (plan.status, plan.planned_add) == ("planned", 20)
    assert len(plan.plan["samples"]["add"]) == 3
    assert h.requests() == 0
    assert query(warehouse, "select count(*) from relay.sync_state") == [(0,)]
    assert query(warehouse, "select status from relay.sync_runs") == [("planned",)]


def test_full_resync_resends_everything(h, warehouse):
    h.write_people(warehouse, people_rows(30))
    h.sync(h.people, warehouse)
    result = h.sync(h.people, warehouse, full_resync=True)
    assert (result.planned_change, result.acked_change) == (30, 30)


def test_wrong_credentials_fail_the_run_without_rejecting_rows(h, warehouse, monkeypatch):
    h.write_people(warehouse, people_rows(10))
    monkeypatch.setenv(h.credential_var, "wrong-key-123456")
    result = h.sync(h.people, warehouse)
    assert result.status == "failed" and "HTTP 401" in result.message and h.credential_var in result.message
    assert (result.planned, result.acked, result.unsent) == (10, 0, 10)  # counted as unacknowledged, resent next run
    assert "wrong-key-123456" not in result.message
    assert query(warehouse, "select count(*) from relay.sync_rejections") == [(0,)]
    assert query(warehouse, "select count(*) from relay.sync_state") == [(0,)]


def test_no_secret_reaches_logs_or_ledger(h, warehouse, caplog):
    caplog.set_level(logging.DEBUG)
    rows = people_rows(40)
    rows[3].update(h.poison)
    h.write_people(warehouse, rows)
    h.write_members(warehouse, [member(1, h.audiences[0])])
    h.faults(error_rate=0.3, seed=3)
    h.sync(h.people, warehouse)
    h.sync(h.members, warehouse)
    con = duckdb.connect(str(warehouse), read_only=True)
    dump = "".join(str(con.execute(f"select * from relay.{t}").fetchall())
                   for t in ("sync_runs", "sync_rejections", "sync_deliveries", "sync_state", "destination_objects"))
    con.close()
    assert "rejected" in dump or "HTTP" in dump  # the ledger did record failures
    for secret in h.secrets:
        assert secret not in caplog.text and secret not in dump


def test_killed_sync_resumes_without_loss(h, warehouse, monkeypatch):
    n, step, latency_ms = h.kill
    rows = people_rows(n)
    h.write_people(warehouse, rows)
    h.faults(latency_ms=latency_ms)
    monkeypatch.setenv("RELAY_CONCURRENCY", "2")
    kills = 0
    for _ in range(3):
        process = subprocess.Popen(sync_command(h.people, warehouse), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while h.items() < (kills + 1) * step and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        # Whatever the state claims, the destination holds: never more claimed than delivered.
        held = h.held()
        for (payload,) in query(warehouse, "select payload from relay.sync_state"):
            row = json.loads(payload)
            assert held[h.id_of(row)] == h.expected([row])[h.id_of(row)]
    assert kills >= 2
    h.faults(latency_ms=0)
    final = h.sync(h.people, warehouse)
    assert final.status == "succeeded"
    assert h.held() == h.expected(rows)
    assert query(warehouse, "select count(*) from relay.sync_state") == [(n,)]
    assert query(warehouse, "select count(*) from relay.sync_runs where status = 'abandoned'")[0][0] >= 1


# ------------------------------------------------------------------------------------------ per-API contract points
@pytest.fixture
def cordial(monkeypatch):
    with CordialHarness(monkeypatch) as harness:
        yield harness


@pytest.fixture
def talon_one(monkeypatch):
    with TalonOneHarness(monkeypatch) as harness:
        yield harness


@pytest.fixture
def customerio(monkeypatch):
    with CustomerIOHarness(monkeypatch) as harness:
        yield harness


def test_a_ledger_whose_state_has_a_key_index_keeps_its_rows_without_it(customerio, warehouse):
    """Ledgers from before sync_state lost its key index are rewritten on the first connect: same rows, no
    index, and the next run sends nothing."""
    h = customerio
    h.write_people(warehouse, people_rows(200))
    h.sync(h.people, warehouse)
    con = duckdb.connect(str(warehouse))
    rows = con.execute("select * from relay.sync_state order by all").fetchall()
    con.execute("create table relay.old_state as select * from relay.sync_state; drop table relay.sync_state; "
                "create table relay.sync_state (sync_name varchar, record_key varchar, identifier varchar, "
                "row_hash varchar, payload json, first_synced_at timestamp, last_synced_at timestamp, "
                "last_run_id varchar, primary key (sync_name, record_key)); "
                "insert into relay.sync_state select * from relay.old_state; drop table relay.old_state")
    con.close()
    assert h.sync(h.people, warehouse).planned == 0
    assert query(warehouse, "select * from relay.sync_state order by all") == rows
    assert query(warehouse, "select constraint_type from duckdb_constraints() where table_name = 'sync_state' "
                            "and constraint_type = 'PRIMARY KEY'") == []


def test_two_runs_of_one_sync_never_overlap_in_a_process(customerio, warehouse, monkeypatch):
    """Only one run writes a sync's state at a time (its keys stay unique without an index): a second run
    started while the first is delivering is refused, and sends nothing."""
    h = customerio
    h.write_people(warehouse, people_rows(300))
    h.faults(latency_ms=300)
    first = ThreadPoolExecutor(1).submit(h.sync, h.people, warehouse)
    deadline = time.monotonic() + 30
    while h.requests() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(SyncRefused, match="already running"):
        h.sync(h.people, warehouse)
    assert first.result(timeout=60).acked_add == 300
    h.faults(latency_ms=0)
    assert query(warehouse, "select count(*), count(distinct record_key) from relay.sync_state") == [(300, 300)]


def test_customerio_clears_its_reserved_timestamp_with_null(customerio, warehouse):
    """created_at must be an integer at Customer.io: the empty string that clears other attributes is a 400."""
    columns = {"customer_key": "varchar", "created_at": "bigint", "vip_tier": "varchar"}
    spec = SyncSpec(name="sync_test__created", relation="syncs.created", destination="customerio",
                    object="attributes", primary_key=("customer_key",), identifier="customer_key", on_exit="clear",
                    schedule="frequent", columns=columns)
    rows = [{"customer_key": f"c{i}", "created_at": 1_700_000_000 + i, "vip_tier": "gold"} for i in range(3)]
    write_table(warehouse, "syncs.created", columns, rows)
    customerio.sync(spec, warehouse)
    rows[0]["created_at"] = None
    write_table(warehouse, "syncs.created", columns, rows[:2])  # c0's created_at becomes null; c2 leaves the model
    result = customerio.sync(spec, warehouse)
    assert (result.status, result.acked_change, result.acked_remove, result.rejected) == ("succeeded", 1, 1, 0)
    held = customerio.held()
    assert "created_at" not in held["c0"] and held["c0"]["vip_tier"] == "gold"
    assert held["c2"] == {}


def test_customerio_applies_the_rest_of_a_change_whose_email_it_refuses(customerio, warehouse):
    """Customer.io refuses a whole update silently when an identifier in it is another person's (e.g. one a
    merge retired): an email change travels in an entry of its own, so the other attributes land; an entry the
    answer blames is mapped back to its row."""
    h = customerio
    rows = people_rows(4)
    h.write_people(warehouse, rows)
    h.sync(h.people, warehouse)
    rows[1].update(email=rows[0]["email"], vip_tier="gold")  # c000001 takes c000000's address
    rows[2].update(email="new-2@example.com", **h.poison)  # refused for its vip_tier: the whole row is rejected
    rows[3].update(vip_tier="gold")
    h.write_people(warehouse, rows[1:])  # c000000 leaves the model, keeping its address at Customer.io
    result = h.sync(h.people, warehouse)
    assert (result.acked_change, result.acked_remove, result.rejected) == (2, 1, 1)
    held = h.held()
    assert held["c000001"]["vip_tier"] == "gold" and held["c000001"]["email"] == "person1@example.com"
    assert held["c000003"]["vip_tier"] == "gold"
    reasons = dict(query(warehouse, "select record_key, reason from relay.sync_rejections"))
    assert list(reasons) == ["c000002"] and h.poison_reason in reasons["c000002"]
    # What Customer.io refused silently (its activity log): the taken address, and an email change by id, which
    # this workspace does not allow (c000002 is retried next run for its refused vip_tier anyway).
    assert h.state()["attribute_failures"] == [
        {"identifier": "id:c000001", "reason": "email belongs to another person"},
        {"identifier": "id:c000002", "reason": "changing email needs the person addressed by cio_id"}]


def test_a_write_of_unknown_fate_is_reasserted_once_it_can_no_longer_land(customerio, warehouse, monkeypatch):
    """A request the client gave up on may still be applied by the server later, after a newer run's write,
    and undo it. Its rows are marked and re-sent by the first run after RELAY_RESEND_UNCONFIRMED_S."""
    h = customerio
    for name, value in (("timeout_s", 0.3), ("max_attempts", 2), ("backoff_base_s", 0.01)):
        monkeypatch.setitem(HttpClient.__init__.__kwdefaults__, name, value)
    monkeypatch.setenv("RELAY_RESEND_UNCONFIRMED_S", "5")
    rows = people_rows(20)
    newer = [{**row, "orders_count": row["orders_count"] + 1000} for row in rows]
    h.write_people(warehouse, rows)
    h.faults(timeout_rate=1, timeout_s=2.5)  # every request is held 2.5 s and then applied
    started = time.monotonic()
    first = h.sync(h.people, warehouse)
    assert (first.status, first.acked, first.unconfirmed) == ("failed", 0, 20)
    h.faults(timeout_rate=0)
    h.write_people(warehouse, newer)
    assert h.sync(h.people, warehouse).acked_add == 20
    time.sleep(max(0.0, started + 3.5 - time.monotonic()))
    assert h.held() == h.expected(rows)  # the held copies landed last: what the marks are for
    assert h.sync(h.people, warehouse).planned == 0  # not due yet: a held copy could still land
    time.sleep(max(0.0, started + 6.5 - time.monotonic()))
    last = h.sync(h.people, warehouse)
    assert (last.status, last.resent, last.acked_change) == ("succeeded", 20, 20)
    assert h.held() == h.expected(newer)
    assert query(warehouse, "select count(*) from relay.sync_unconfirmed") == [(0,)]
    assert h.sync(h.people, warehouse).planned == 0


def test_after_a_scoped_build_the_diff_covers_only_its_people(customerio, warehouse):
    """What dbt logged decides the diff: a scoped build right after the build the last successful run saw
    limits it to that build's people; a full refresh or a failed run widens it to every row."""
    h, spec = customerio, replace(customerio.people, scope_relation="intermediate.scope_keys")
    con = duckdb.connect(str(warehouse))
    con.execute("create schema relay; create schema intermediate; create table intermediate.scope_keys (customer_key varchar)")
    con.execute(f"create table {SCOPE_LOG} (invocation_id varchar, started_at timestamp, full_refresh boolean, "
                "completed_at timestamp)")
    con.close()

    def build(name: str, full_refresh: bool, people=(), complete=True) -> None:
        with duckdb.connect(str(warehouse)) as c:
            c.execute(f"insert into {SCOPE_LOG} values (?, now()::timestamp, ?, if(?, now()::timestamp, null))",
                      [name, full_refresh, complete])
            c.execute("delete from intermediate.scope_keys")
            c.execute("insert into intermediate.scope_keys select unnest(?)", [list(people)])

    rows = people_rows(10)
    h.write_people(warehouse, rows)
    build("b1", full_refresh=True)
    assert h.sync(spec, warehouse).plan["diff"] == "everything: the last run did not succeed, or the sync's declaration changed since"
    rows[1]["orders_count"] = rows[2]["orders_count"] = 500
    h.write_people(warehouse, rows)
    build("b2", full_refresh=False, people=["c000001"])  # a row outside the scope changed: the diff cannot see it
    scoped = h.sync(spec, warehouse)
    assert (scoped.plan["diff"], scoped.acked_change) == ("people dbt rebuilt since the last run", 1)
    assert h.sync(spec, warehouse).planned == 0  # no build since: nothing to diff
    build("b3", full_refresh=False, people=["c000003"], complete=False)
    full = h.sync(spec, warehouse)
    assert (full.plan["diff"], full.acked_change) == ("everything: the last dbt build did not complete", 1)
    assert h.held() == h.expected(rows)
    build("b4", full_refresh=True)
    assert h.sync(spec, warehouse).plan["diff"] == "everything: the last dbt build was not a scoped build right after the last run's"


def test_cordial_errors_in_a_200_body_are_rejections_retried_next_run(cordial, warehouse):
    rows = people_rows(60)
    cordial.write_people(warehouse, rows)
    cordial.faults(soft_error_rate=0.2, seed=5)
    first = cordial.sync(cordial.people, warehouse)
    soft = cordial.stats()["flags"]["soft_errors"]
    assert soft > 0 and (first.status, first.acked_add, first.rejected) == ("partial", 60 - soft, soft)
    assert {r for (r,) in query(warehouse, "select distinct status_code from relay.sync_rejections")} == {200}
    cordial.faults(soft_error_rate=0)
    retry = cordial.sync(cordial.people, warehouse)
    assert (retry.planned_add, retry.acked_add) == (soft, soft)
    assert cordial.held() == cordial.expected(rows)


def test_cordial_large_changes_go_as_bulk_imports(cordial, warehouse, monkeypatch, tmp_path):
    monkeypatch.setenv("CORDIAL_IMPORT_MIN_ROWS", "200")
    rows = people_rows(2500)
    cordial.write_people(warehouse, rows)
    first = cordial.sync(cordial.people, warehouse)
    assert (first.status, first.acked_add, first.rejected) == ("succeeded", 2500, 0)
    assert cordial.held() == cordial.expected(rows)
    assert cordial.stats()["by_route"].get("POST /v2/contacts", 0) == 0
    # 250 clears (a CSV cannot clear: an empty cell leaves the value) go one by one; 250 changes as an import.
    changed = [{**r, "last_order_at": None} if i % 10 == 0 else {**r, "vip_tier": "bronze"} if i % 10 == 1 else r
               for i, r in enumerate(rows)]
    cordial.write_people(warehouse, changed)
    second = cordial.sync(cordial.people, warehouse)
    assert (second.status, second.acked_change) == ("succeeded", 500)
    assert cordial.held() == cordial.expected(changed)
    routes = cordial.stats()["by_route"]
    assert (routes["POST /v2/contactimports"], routes["POST /v2/contacts"]) == (2, 250)
    assert not any((tmp_path / "data" / "cordial_imports").iterdir())  # customer data is not left behind
    assert cordial.sync(cordial.people, warehouse).requests == 0


def test_cordial_import_rejects_the_rows_it_names_and_sends_unnamed_failures_one_by_one(cordial, warehouse, monkeypatch):
    monkeypatch.setenv("CORDIAL_IMPORT_MIN_ROWS", "500")
    # 150 bad rows: more than the 100 errors a job lists, so 50 failures go unnamed.
    bad = set(range(0, 1500, 10))
    rows = [{**person(i), **(cordial.poison if i in bad else {})} for i in range(1500)]
    cordial.write_people(warehouse, rows)
    run = cordial.sync(cordial.people, warehouse)
    assert (run.status, run.acked_add, run.rejected) == ("partial", 1350, 150)
    assert cordial.held() == cordial.expected([r for i, r in enumerate(rows) if i not in bad])
    reasons = [r for (r,) in query(warehouse, "select reason from relay.sync_rejections")]
    assert len(reasons) == 150 and all(cordial.poison_reason in r for r in reasons)
    assert cordial.stats()["by_route"]["POST /v2/contacts"] == 1400  # the rows the job left unknown


def test_cordial_import_that_cannot_run_falls_back_to_one_request_per_contact(cordial, warehouse, monkeypatch, tmp_path):
    monkeypatch.setenv("CORDIAL_IMPORT_MIN_ROWS", "500")
    monkeypatch.setenv("CORDIAL_IMPORT_DIR", str(tmp_path / "imports"))
    monkeypatch.setenv("CORDIAL_IMPORT_URL", "file:///nonexistent")  # Cordial cannot read what we wrote
    rows = people_rows(600)
    cordial.write_people(warehouse, rows)
    run = cordial.sync(cordial.people, warehouse)
    assert (run.status, run.acked_add) == ("succeeded", 600)
    assert cordial.held() == cordial.expected(rows)
    assert cordial.stats()["by_route"]["POST /v2/contacts"] == 600


def test_cordial_sends_subscribe_status_only_from_its_column_and_never_forces_it(cordial, warehouse):
    with_status = replace(cordial.people, name="sync_test__consent", relation="syncs.consent",
                          columns={**cordial.people.columns, "subscribe_status": "varchar"})
    rows = [{**person(1), "subscribe_status": "unsubscribed"}, {**person(2), "subscribe_status": None}]
    write_table(warehouse, "syncs.consent", with_status.columns, rows)
    cordial.sync(with_status, warehouse)
    rows[0]["subscribe_status"] = "subscribed"
    write_table(warehouse, "syncs.consent", with_status.columns, rows)
    assert cordial.sync(with_status, warehouse).acked_change == 1
    contacts = {c["email"]: c for c in cordial.state()["contacts"].values()}
    # Resubscribing needs forceSubscribe, which is never sent: Cordial keeps the unsubscribe.
    assert contacts["person1@example.com"]["subscribeStatus"] == "unsubscribed"
    assert cordial.stats()["flags"]["resubscribe_ignored"] == 1
    assert contacts["person2@example.com"]["subscribeStatus"] == "none"
    assert "subscribe_status" not in cordial.state()["attributes"]


def test_talon_one_retries_409s_from_parallel_writes_to_one_profile(talon_one, warehouse, monkeypatch):
    rows = people_rows(2000)
    talon_one.write_people(warehouse, rows[:1])
    talon_one.write_members(warehouse, [member(0, talon_one.audiences[0])])
    for spec in (talon_one.people, talon_one.members):  # setup done, so both runs start sending at once
        talon_one.sync(spec, warehouse)
    talon_one.write_people(warehouse, rows)
    talon_one.write_members(warehouse, [member(i, talon_one.audiences[0]) for i in range(2000)])
    # 80 requests of 100 ms each per sync, 8 at a time: a second of sending each, so the two overlap even
    # when one starts a few hundred milliseconds late on a loaded machine.
    monkeypatch.setattr(talon_one_adapter, "MAX_ITEMS", 25)
    talon_one.faults(latency_ms=100)
    with ThreadPoolExecutor(2) as pool:  # two syncs writing the same profiles at once
        results = list(pool.map(lambda s: talon_one.sync(s, warehouse), (talon_one.people, talon_one.members)))
    assert talon_one.stats()["by_status"].get("409", 0) > 0
    assert [r.status for r in results] == ["succeeded", "succeeded"]
    assert talon_one.held() == talon_one.expected(rows)
    assert len(talon_one.held_members()[talon_one.audiences[0]]) == 2000


def test_talon_one_finds_an_existing_audience_only_with_a_management_key(talon_one, warehouse, monkeypatch):
    talon_one.write_members(warehouse, [member(1, "wh_vip_gold")])
    httpx.post(f"{talon_one.server.url}/v2/audiences", json={"name": "wh_vip_gold", "integrationId": "wh-vip-gold"},
               headers={"Authorization": "ApiKey-v1 talon-SECRET-int-1a2b3c"}).raise_for_status()
    monkeypatch.delenv("TALON_ONE_MANAGEMENT_KEY")
    monkeypatch.setenv("RELAY_DESTINATIONS", "live")  # no demo management key to fall back to
    with pytest.raises(SetupError, match="TALON_ONE_MANAGEMENT_KEY"):
        talon_one.sync(talon_one.members, warehouse)
    monkeypatch.setenv("TALON_ONE_MANAGEMENT_KEY", "talon-SECRET-mgmt-4d5e6f")
    assert talon_one.sync(talon_one.members, warehouse).status == "succeeded"
    assert talon_one.objects()["wh_vip_gold"] == 1


def test_talon_one_refuses_an_attribute_defined_with_another_type(talon_one, warehouse):
    httpx.post(f"{talon_one.server.url}/v1/attributes", headers={"Authorization": "ManagementKey-v1 talon-SECRET-mgmt-4d5e6f"},
               json={"entity": "CustomerProfile", "name": "vip_tier", "title": "VIP tier", "type": "number",
                     "description": "", "suggestions": [], "editable": True}).raise_for_status()
    talon_one.write_people(warehouse, people_rows(5))
    with pytest.raises(SetupError, match="'vip_tier' exists with type 'number'"):
        talon_one.sync(talon_one.people, warehouse)
    assert talon_one.held() == {}


def test_talon_one_setup_creates_attributes_as_talon_ones_newattribute_requires(talon_one, warehouse):
    """Regression: attribute creation left out fields NewAttribute requires (suggestions, editable), so with a
    management key every profiles sync failed at Talon.One; the emulator filled them in and no test saw it."""
    assert talon_one.env()["TALON_ONE_MANAGEMENT_KEY"]  # setup may create attributes
    rows = people_rows(20)
    talon_one.write_people(warehouse, rows)
    result = talon_one.sync(talon_one.people, warehouse)
    assert (result.status, result.acked_add) == ("succeeded", 20)
    assert talon_one.held() == talon_one.expected(rows)
    created = [r for r in talon_one.server.requests if (r.method, r.path) == ("POST", "/v1/attributes")]
    assert sorted(r.body["name"] for r in created) == sorted(talon_one.people.attribute_columns)
    assert vendor_schemas.violations("talon_one", created) == []
    from talon_one.models import NewAttribute

    for r in created:
        NewAttribute.model_validate(r.body)


def test_talon_one_blames_the_items_a_refusal_points_at_and_otherwise_has_the_request_bisected():
    talon = talon_one_adapter.TalonOne(base_url="http://talon.invalid", integration_key="k" * 8, management_key=None)
    batch = Batch(None, [Change(key=f"c{i}", kind="add", identifier=f"t-c{i}", row={}) for i in range(3)])

    def refusal(pointer: str) -> httpx.Response:
        return httpx.Response(400, json={"message": "invalid", "errors": [
            {"title": "Bad Request", "details": "attribute 'x' must be of type time", "source": {"pointer": pointer}}]})

    with pytest.raises(SplitBatch) as named:
        talon.interpret(TalonOneHarness.people, batch, refusal("/customerProfiles/1/attributes/x"))
    assert named.value.rejected == {1: "Talon.One rejected the item: attribute 'x' must be of type time"}
    with pytest.raises(SplitBatch) as anonymous:
        talon.interpret(TalonOneHarness.people, batch, refusal(""))
    assert anonymous.value.rejected == {}


def test_cordial_emails_moving_between_records_end_as_the_model_says(cordial, warehouse, monkeypatch):
    """Each record takes the next one's email: leaving an email and another record's write to it never run
    in parallel, so no write is undone by a late clear (small chunks and latency spikes invite the race)."""
    from sinks.engine import Tuning

    rows = people_rows(120)
    cordial.write_people(warehouse, rows)
    cordial.sync(cordial.people, warehouse)
    moved = [{**row, "email": rows[(i + 1) % len(rows)]["email"]} for i, row in enumerate(rows)]
    cordial.write_people(warehouse, moved)
    cordial.faults(latency_ms=2, spike_rate=0.3, spike_ms=40, seed=5)
    result = cordial.sync(cordial.people, warehouse, allow_large_change=True, tuning=Tuning(chunk_rows=7))
    assert (result.status, result.acked_change, result.rejected) == ("succeeded", 120, 0)
    assert cordial.held() == cordial.expected(moved)
