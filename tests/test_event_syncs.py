"""Event syncs (object `events`): facts delivered once. Against each built destination's emulator over real
HTTP, with a plain table as the sync model (as in test_sync_engine): a first sync honours its backfill
window, a rerun sends nothing, an event too old when first seen or without consent is recorded in
relay.sync_skipped and never sent, an event changed after it was acknowledged is recorded (once) and not
resent. After a crash between acknowledgement and the state write, Customer.io drops the resend (deterministic
ULID ids); Talon.One keeps every repeat, so the engine journals events before sending and, after a crash, looks
the unanswered ones up in Talon.One's event list (by the relay_event_id it sends): every event lands exactly
once. Cordial can be neither deduplicated nor asked: its unanswered events are held, counted, never doubled. Declarations an events sync
cannot have fail when they load, naming the model and the field."""

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from sinks.declarations import DeclarationError, EventOptions, SyncSpec, load_specs
from sinks.destinations import talon_one
from sinks.destinations.customerio import event_ulid
from sinks.engine import Tuning
from sinks.http import HttpClient
from support.harnesses import CordialHarness, CustomerIOHarness, TalonOneHarness, people_rows
from support.sync_process import finish, start_sync
from support.warehouse import query, write_table

COLUMNS = {"event_id": "varchar", "customer_key": "varchar", "event_name": "varchar", "occurred_at": "timestamp",
           "consented": "boolean", "order_total": "double", "recovery_url": "varchar"}
TABLE = {**COLUMNS, "email": "varchar"}  # Cordial addresses contacts by email
CLOCK = datetime(2026, 11, 1, 12, 0, 0)


DESTINATION = {"customerio": CustomerIOHarness, "talon_one": TalonOneHarness, "cordial": CordialHarness}
ACTIVE = ["customerio"]  # the destination of the test running (the fixture sets it)


def spec(**options) -> SyncSpec:
    settings = {"name_column": "event_name", "time_column": "occurred_at", "max_age_s": 2 * 86400.0,
                "backfill_s": 0.0, "consent_column": "consented", **options}
    identifier = "email" if ACTIVE[0] == "cordial" else "customer_key"
    columns = {(identifier if c == "customer_key" else c): t for c, t in COLUMNS.items()}
    return SyncSpec(name="sync_test__events", relation="syncs.events", destination=ACTIVE[0], object="events",
                    primary_key=("event_id",), identifier=identifier, on_exit="keep", schedule="frequent",
                    columns=columns, events=EventOptions(**settings), clock=("syncs.clock", "as_of"))


def event(i: int, at: datetime, name: str = "Order Completed", consented: bool = True, total: float = 10.0) -> dict:
    return {"event_id": f"order_completed:{i}", "customer_key": f"c{i % 7}", "email": f"person{i % 7}@example.com",
            "event_name": name, "occurred_at": at,
            "consented": consented, "order_total": total, "recovery_url": None if name != "Checkout Abandoned" else f"https://shop/r/{i}"}


def write(warehouse, rows: list[dict], clock: datetime) -> None:
    write_table(warehouse, "syncs.events", TABLE, rows)
    write_table(warehouse, "syncs.clock", {"as_of": "timestamp"}, [{"as_of": clock}])


@pytest.fixture(params=list(DESTINATION))
def cio(request, monkeypatch):
    ACTIVE[0] = request.param
    with DESTINATION[request.param](monkeypatch) as harness:
        yield harness


@pytest.fixture(autouse=True)
def contacts(cio, warehouse):
    """Cordial records activities of contacts that exist: the people c0-c6 are synced first."""
    if cio.name == "cordial":
        cio.write_people(warehouse, people_rows(7))
        assert cio.sync(cio.people, warehouse).acked_add == 7


def delivered(h) -> list[dict]:
    """Every event the destination holds (repeats included): person, name, attributes (and its id and
    timestamp where the destination takes them)."""
    state = h.state()
    if h.name == "talon_one":
        return [{"person": e["profileId"], "name": e["type"], "id": e["attributes"]["relay_event_id"],
                 "attributes": {k: v for k, v in e["attributes"].items() if k != "relay_event_id"}} for e in state["events"]]
    if h.name == "cordial":  # person<n>@example.com is c<n>
        person = {cid: "c" + c["email"].removeprefix("person").split("@")[0] for cid, c in state["contacts"].items()}
        return [{"person": person[a["cID"]], "name": a["a"], "attributes": a["properties"], "ats": a["ats"]}
                for a in state["activities"]]
    return state["event_log"]


def skipped(warehouse) -> dict[str, str]:
    return dict(query(warehouse, "select record_key, reason from relay.sync_skipped"))


def test_a_first_sync_sends_its_backfill_window_then_each_new_event_once(cio, warehouse):
    history = [event(i, CLOCK - timedelta(hours=i + 1)) for i in range(10)]
    write(warehouse, history, CLOCK)
    first = cio.sync(spec(backfill_s=0.0), warehouse)  # backfill: none
    assert (first.status, first.planned_add, first.skipped, first.requests) == ("succeeded", 0, 10, 0)
    assert set(skipped(warehouse).values()) == {"before the backfill window of the first sync"}
    assert delivered(cio) == []

    new = [event(100 + i, CLOCK + timedelta(minutes=i + 1), "Checkout Abandoned", total=5.0 + i) for i in range(5)]
    write(warehouse, history + new, CLOCK + timedelta(minutes=10))
    second = cio.sync(spec(backfill_s=0.0), warehouse)
    assert (second.status, second.acked_add, second.skipped) == ("succeeded", 5, 0)
    log = delivered(cio)
    assert sorted(e["attributes"]["recovery_url"] for e in log) == [f"https://shop/r/{100 + i}" for i in range(5)]
    first_event = next(e for e in log if e["attributes"]["recovery_url"] == "https://shop/r/100")
    assert first_event["person"] == "c2" and first_event["name"] == "Checkout Abandoned"
    # The id the destination dedupes by (Customer.io: a ULID of the event) or Relay looks it up by (Talon.One).
    expected_id = {"customerio": event_ulid("order_completed:100", int((CLOCK + timedelta(minutes=1)).replace(
        tzinfo=timezone.utc).timestamp() * 1000)), "talon_one": "order_completed:100"}
    assert first_event.get("id") == expected_id.get(cio.name)
    assert first_event["attributes"] == {"order_total": 5.0, "recovery_url": "https://shop/r/100"}
    if cio.name == "customerio":
        assert first_event["timestamp"] == int((CLOCK + timedelta(minutes=1)).replace(tzinfo=timezone.utc).timestamp())
    if cio.name == "cordial":
        assert first_event["ats"] == "2026-11-01T12:01:00Z"

    before = cio.requests()
    third = cio.sync(spec(backfill_s=0.0), warehouse)
    assert (third.planned_add, third.skipped, third.requests) == (0, 0, 0) and cio.requests() == before
    assert len(delivered(cio)) == 5
    assert query(warehouse, "select count(*), count(distinct record_key) from relay.sync_deliveries "
                            "where sync_name = 'sync_test__events'") == [(5, 5)]


def test_a_backfill_window_sends_the_recent_history_only(cio, warehouse):
    write(warehouse, [event(i, CLOCK - timedelta(hours=6 * i + 1)) for i in range(8)], CLOCK)
    result = cio.sync(spec(backfill_s=86400.0), warehouse)  # backfill: 1 day -> 1, 7, 13, 19 hours ago
    assert (result.acked_add, result.skipped) == (4, 4)
    assert sorted(e["person"] for e in delivered(cio)) == ["c0", "c1", "c2", "c3"]  # events 0-3: 1, 7, 13, 19 h ago


def test_late_and_unconsented_events_are_skipped_and_recorded_never_sent(cio, warehouse):
    rows = [event(1, CLOCK - timedelta(minutes=5))]
    write(warehouse, rows, CLOCK)
    assert cio.sync(spec(backfill_s=None), warehouse).acked_add == 1
    late = event(2, CLOCK - timedelta(days=3))  # landed now, happened 3 days ago: max_event_age is 2 days
    unconsented = event(3, CLOCK + timedelta(minutes=1), "Segment Entered", consented=False)
    fresh = event(4, CLOCK + timedelta(minutes=2))
    write(warehouse, rows + [late, unconsented, fresh], CLOCK + timedelta(minutes=5))
    result = cio.sync(spec(backfill_s=None), warehouse)
    assert (result.acked_add, result.skipped) == (1, 2)
    assert "2 events skipped" in result.message and result.status == "succeeded"
    assert skipped(warehouse) == {"order_completed:2": "older than max_event_age when first seen",
                                  "order_completed:3": "no consent"}
    assert sorted(e["person"] for e in delivered(cio)) == ["c1", "c4"]
    # Skipped is final: consent given later does not send the past trigger.
    unconsented["consented"] = True
    write(warehouse, rows + [late, unconsented, fresh], CLOCK + timedelta(minutes=6))
    again = cio.sync(spec(backfill_s=None), warehouse)
    assert (again.planned_add, again.skipped) == (0, 0) and len(delivered(cio)) == 2


def test_an_event_changed_after_it_was_sent_is_recorded_once_and_not_resent(cio, warehouse):
    rows = [event(1, CLOCK - timedelta(minutes=5)), event(2, CLOCK - timedelta(minutes=4))]
    write(warehouse, rows, CLOCK)
    cio.sync(spec(backfill_s=None), warehouse)
    rows[0]["order_total"] = 99.0
    write(warehouse, rows, CLOCK)
    for _ in range(2):
        result = cio.sync(spec(backfill_s=None), warehouse)
        assert (result.planned_add, result.requests) == (0, 0)
    assert result.plan["changed_after_sent"] == 0  # recorded by the first of the two runs
    rejections = query(warehouse, "select record_key, kind, reason from relay.sync_rejections")
    assert [(k, kind) for k, kind, _ in rejections] == [("order_completed:1", "change")]
    assert "events are facts" in rejections[0][2]
    assert [e["attributes"]["order_total"] for e in delivered(cio) if e["person"] == "c1"] == [10.0]


def test_a_crash_before_the_state_write_never_lands_an_event_twice(cio, warehouse, monkeypatch):
    monkeypatch.setenv("RELAY_RESEND_UNCONFIRMED_S", "0")  # no stalled copy can land later: look up at once
    monkeypatch.setattr(talon_one, "PROFILE_LOOKUPS", 0)  # Talon.One: by type and time (a lost answer: by profile)
    rows = [event(i, CLOCK - timedelta(minutes=i), total=float(i)) for i in range(50)]
    write(warehouse, rows, CLOCK)
    # The process exits (137) right after the first acknowledgement, before its state write.
    crashed = finish(start_sync(spec(backfill_s=None), warehouse, "--failpoint", "after_ack:1"), timeout=60)
    assert crashed["exit"] == 137, crashed
    landed = len(delivered(cio))
    assert landed >= 1 and query(warehouse, "select count(*) from relay.sync_state where sync_name = 'sync_test__events'") == [(0,)]
    rerun = cio.sync(spec(backfill_s=None), warehouse)
    totals = sorted(e["attributes"]["order_total"] for e in delivered(cio))
    assert len(totals) == len(set(totals)), "an event landed twice"
    if cio.name == "customerio":  # it drops a repeated id: everything is resent, and lands once
        assert (rerun.status, rerun.acked_add, rerun.skipped) == ("succeeded", 50, 0) and len(totals) == 50
        assert cio.stats()["flags"]["duplicate_events_dropped"] == landed
    elif cio.name == "talon_one":  # journaled, then looked up: what landed is acknowledged, the rest sent once
        checked = rerun.plan["unknown_fate_checked"]
        assert checked["landed"] == landed and 0 < checked["not_landed"] <= 2 * Tuning().journal_window
        assert (rerun.status, rerun.skipped, rerun.acked_add, len(totals)) == ("succeeded", 0, 50 - landed, 50)
        assert query(warehouse, "select count(*) from relay.sync_state where sync_name = 'sync_test__events'") == [(50,)]
    else:  # Cordial cannot be asked: what may have landed is held, the rest is sent
        held = dict(query(warehouse, "select record_key, reason from relay.sync_skipped"))
        assert rerun.skipped == rerun.plan["unknown_fate"] == len(held) >= landed
        assert all(reason.startswith("unknown fate") for reason in held.values())
        assert rerun.acked_add == 50 - len(held) and len(totals) == landed + rerun.acked_add
        # At most two journal windows of requests (one event each) were at risk: the one being sent and the
        # one journaled ahead of it.
        assert len(held) <= 2 * Tuning().journal_window


@pytest.mark.parametrize("fault", ["stall", "drop"])
def test_an_event_whose_answer_was_lost_lands_once_or_is_held(cio, warehouse, monkeypatch, fault):
    """stall: the server applies the request after the client gave up on it; drop: the connection closes
    before it is handled. Customer.io: retried, a repeat dropped by its id. Talon.One: not retried; the first
    run once no stalled copy can land (RELAY_RESEND_UNCONFIRMED_S) looks it up and sends only what did not
    land. Cordial: not retried, and held (it cannot be asked)."""
    for name, value in (("timeout_s", 0.3), ("max_attempts", 2), ("backoff_base_s", 0.01)):
        monkeypatch.setitem(HttpClient.__init__.__kwdefaults__, name, value)
    monkeypatch.setenv("RELAY_RESEND_UNCONFIRMED_S", "3")
    warm = [event(99, CLOCK - timedelta(minutes=30), total=99.0)]  # setup done: only events meet the fault
    write(warehouse, warm, CLOCK)
    assert cio.sync(spec(backfill_s=None), warehouse).acked_add == 1
    write(warehouse, warm + [event(i, CLOCK - timedelta(minutes=i), total=float(i)) for i in range(3)], CLOCK)
    cio.faults(**({"timeout_rate": 1, "timeout_s": 1.0} if fault == "stall" else {"drop_rate": 1}))
    started = time.monotonic()
    first = cio.sync(spec(backfill_s=None), warehouse)
    cio.faults(timeout_rate=0, drop_rate=0)
    time.sleep(max(0.0, started + 1.5 - time.monotonic()))  # every stalled copy has landed
    landed = 3 if fault == "stall" else 0
    assert len(delivered(cio)) == 1 + landed
    second = cio.sync(spec(backfill_s=None), warehouse)
    if cio.name == "customerio":  # retried until the tries ran out, then resent: a landed copy is dropped
        assert (first.status, first.unsent, second.acked_add) == ("failed", 3, 3)
        assert cio.stats()["flags"].get("duplicate_events_dropped", 0) == 2 * landed
    else:  # never retried: its fate is settled by a later run
        assert (first.status, first.unconfirmed, first.unsent) == ("succeeded", 3, 0)
        assert "unknown fate" in first.message
    if cio.name == "talon_one":
        assert (second.planned_add, second.plan["unknown_fate_waiting"]) == (0, 3)  # a copy could still land
        time.sleep(max(0.0, started + 3.5 - time.monotonic()))
        third = cio.sync(spec(backfill_s=None), warehouse)
        assert third.plan["unknown_fate_checked"] == {"landed": landed, "not_landed": 3 - landed}
        assert (third.status, third.acked_add) == ("succeeded", 3 - landed)
    if cio.name == "cordial":
        assert (second.planned_add, second.skipped, second.plan["unknown_fate"]) == (0, 3, 3)
        assert all(r.startswith("unknown fate") for r in skipped(warehouse).values())
    totals = [e["attributes"]["order_total"] for e in delivered(cio)]
    assert sorted(totals) == ([0.0, 1.0, 2.0] if cio.name != "cordial" or fault == "stall" else []) + [99.0], \
        "lost or doubled"


def manifest(tmp_path, sync: dict, columns: dict[str, str], destination: str = "customerio"):
    node = {"resource_type": "model", "name": "sync_x__events", "schema": "syncs",
            "config": {"meta": {"sync": {"destination": destination, "object": "events", "primary_key": "event_id",
                                         "identifier": "customer_key", **sync}}},
            "columns": {c: {"data_type": t} for c, t in columns.items()}}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"nodes": {"model.relay.sync_x__events": node}}))
    return path


@pytest.mark.parametrize("sync, columns, destination, message", [
    ({"max_event_age": "two days"}, COLUMNS, "customerio",
     "meta.sync.max_event_age is 'two days'; expected '<n> minutes|hours|days'"),
    ({"backfill": "forever"}, COLUMNS, "customerio", "meta.sync.backfill is 'forever'; expected '<n> minutes|hours|days', none or all"),
    ({"event_time": "happened_at"}, COLUMNS, "customerio", "meta.sync.event_time names column 'happened_at'"),
    ({"consent": "order_total"}, COLUMNS, "customerio", "meta.sync.consent is 'order_total'; expected a boolean column"),
    ({}, {**COLUMNS, "occurred_at": "varchar"}, "customerio", "event_time column 'occurred_at' is 'varchar'"),
    ({"on_exit": "remove"}, COLUMNS, "customerio", "on_exit is 'remove'; for object events expected one of keep"),
])
def test_a_wrong_events_declaration_fails_naming_the_model_and_field(tmp_path, sync, columns, destination, message):
    with pytest.raises(DeclarationError, match="sync model sync_x__events") as failure:
        load_specs(manifest(tmp_path, sync, columns, destination))
    assert message in str(failure.value)

