"""Identity merges reach the destinations (sinks/engine/merges.py), against each emulator over real HTTP.

Sync models are plain tables here, with a merges table in the shape of marts.identity_merges: person 3 is
retired into person 2, and the destinations' state is the oracle. Customer.io merges (one person left, the
survivor's attributes exactly the model's, its segments corrected by the membership sync); Talon.One retires
the profile (exit values); Cordial exits the contact (its merge API is unconfirmed) and says why. Every
outcome is in relay.sync_merges and sync_deliveries, a rerun sends nothing, a mass merge is refused by the
guard, and a process killed at each step of a merge converges on the next run with one merge applied.
The end-to-end version on sample data (dbt, the shipped models, all three destinations) is
test_exits.py::test_a_purchase_and_a_merge_leave_every_destination_reading_not_eligible.
"""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import duckdb
import httpx
import pytest

from relay import pipeline, sample_data
from support.dbt import run_dbt
from support.harnesses import HARNESSES, CustomerIOHarness, member, people_rows
from support.sync_process import CRASH_EXIT, finish, start_sync
from support.warehouse import query, write_table

RETIRED, SURVIVOR = "c000003", "c000002"
OUTCOMES = {"customerio": "merged", "talon_one": "retired", "cordial": "exited"}


@pytest.fixture(params=list(HARNESSES))
def h(request, monkeypatch):
    with HARNESSES[request.param](monkeypatch) as harness:
        yield harness


def people_spec(h):
    return replace(h.people, merges="syncs.merges")


def write_merges(warehouse, pairs: list[tuple[str, str]]) -> None:
    write_table(warehouse, "syncs.merges", {"retired_key": "varchar", "surviving_key": "varchar"},
                [{"retired_key": r, "surviving_key": s} for r, s in pairs])


def first_sync(h, warehouse, rows: list[dict]):
    """The people sync (declaring merges) after a first sync of `rows`, no merge yet."""
    spec = people_spec(h)
    h.write_people(warehouse, rows)
    write_merges(warehouse, [])
    assert h.sync(spec, warehouse).status == "succeeded"
    return spec


def merged_world(rows: list[dict], retired: int = 3) -> list[dict]:
    """The model after person `retired` merged into person 2: the retired row is gone and the survivor lost
    the attributes only the retired person had (its vip tier is unset, as the merged person's is)."""
    return [{**r, "vip_tier": None} if r["customer_key"] == SURVIVOR else r for i, r in enumerate(rows) if i != retired]


def test_a_merge_reaches_each_destination_once_and_a_rerun_sends_nothing(h, warehouse):
    spec = people_spec(h)
    rows = people_rows(10)
    h.write_people(warehouse, rows)
    write_merges(warehouse, [])
    assert h.sync(spec, warehouse).status == "succeeded"
    retired_row = rows[3]
    after = merged_world(rows)
    h.write_people(warehouse, after)
    write_merges(warehouse, [(RETIRED, SURVIVOR)])

    planned = h.sync(spec, warehouse, apply=False)
    assert planned.plan["merges"]["outcomes"] == {OUTCOMES[h.name]: 1}
    assert planned.plan["merges"]["samples"][0]["retired_key"] == RETIRED
    result = h.sync(spec, warehouse)
    assert result.status == "succeeded", result.message

    held = h.held()
    survivor_id = h.id_of(rows[2])
    survivor = {k: v for k, v in held[survivor_id].items() if v != h.unset}  # Talon.One's unset string reads ""
    assert survivor == h.expected(after)[survivor_id]  # exactly the model: nothing the merge brought stays
    if h.name == "customerio":
        assert h.id_of(retired_row) not in held  # merged, then deleted
        assert (result.acked_merge, result.acked_remove) == (1, 0)
        assert [(m["secondary_id"]) for m in h.state()["merges"]] == [RETIRED]
    else:
        assert held[h.id_of(retired_row)] == h.exited(retired_row)  # harmless: the exit values
        assert (result.acked_merge, result.acked_remove) == (0, 1)
    recorded = query(warehouse, "select retired_key, surviving_key, outcome, note is not null from relay.sync_merges")
    assert recorded == [(RETIRED, SURVIVOR, OUTCOMES[h.name], h.name != "customerio")]
    kinds = query(warehouse, "select kind, identifier from relay.sync_deliveries where record_key = ? and run_id = ?",
                  [RETIRED, result.run_id])
    assert kinds == [("merge" if h.name == "customerio" else "remove", h.id_of(retired_row))]
    assert query(warehouse, "select count(*) from relay.sync_state where record_key = ?", [RETIRED]) == [(0,)]

    before = h.requests()
    again = h.sync(spec, warehouse)
    assert (again.status, again.planned, h.requests()) == ("succeeded", 0, before)


def test_customerio_memberships_follow_the_merge_and_only_the_models_remain(monkeypatch, warehouse):
    with CustomerIOHarness(monkeypatch) as h:
        spec, members = people_spec(h), h.members
        rows = people_rows(6)
        h.write_people(warehouse, rows)
        h.write_members(warehouse, [member(3, "wh_vip"), member(3, "wh_cart_0_4h"), member(2, "wh_vip")])
        write_merges(warehouse, [])
        for s in (spec, members):
            assert h.sync(s, warehouse).status == "succeeded"
        h.write_people(warehouse, merged_world(rows))
        # After the merge the survivor is in the vip segment only (the model's), not the retired cart one.
        h.write_members(warehouse, [member(2, "wh_vip")])
        write_merges(warehouse, [(RETIRED, SURVIVOR)])
        assert h.sync(spec, warehouse).acked_merge == 1
        # The destination moved the retired person's segments to the survivor.
        assert SURVIVOR in h.held_members()["wh_cart_0_4h"]
        result = h.sync(members, warehouse)
        assert result.status == "succeeded" and result.plan["carried_by_merges"] == 2
        assert (result.acked_remove, result.acked_add) == (1, 0)  # only the cart membership the model lacks
        assert h.held_members() == {"wh_vip": {SURVIVOR}, "wh_cart_0_4h": set()}
        assert query(warehouse, "select record_key from relay.sync_state where sync_name = ? order by 1",
                     [members.name]) == [(f'["{SURVIVOR}","wh_vip"]',)]
        assert h.sync(members, warehouse).planned == 0


def test_a_merge_into_a_new_survivor_waits_for_its_acknowledgement(monkeypatch, warehouse):
    """The survivor is first written in the run that merges: the merge goes after its acknowledgement."""
    with CustomerIOHarness(monkeypatch) as h:
        rows = people_rows(6)
        spec = first_sync(h, warehouse, [r for i, r in enumerate(rows) if i != 2])  # the survivor is not held yet
        h.write_people(warehouse, merged_world(rows))
        write_merges(warehouse, [(RETIRED, SURVIVOR)])
        result = h.sync(spec, warehouse)
        assert (result.status, result.acked_add, result.acked_merge) == ("succeeded", 1, 1)
        assert [m["secondary_id"] for m in h.state()["merges"]] == [RETIRED]
        assert RETIRED not in h.held()


def test_customerio_ignores_a_merge_into_a_person_the_same_request_creates(monkeypatch):
    """The vendor's race, modelled: a client that sends identify and merge together merges nothing."""
    with CustomerIOHarness(monkeypatch) as h:
        auth = ("site-7f3a", "trk-SECRET-9c1d2e3f4a5b")
        old = {"type": "person", "identifiers": {"id": "old"}, "action": "identify", "attributes": {"a": 1}}
        new = {"type": "person", "identifiers": {"id": "new"}, "action": "identify", "attributes": {}}
        merge = {"type": "person", "action": "merge", "primary": {"id": "new"}, "secondary": {"id": "old"}}
        for batch in ([old], [new, merge]):
            httpx.post(f"{h.server.url}/api/v2/batch", json={"batch": batch}, auth=auth).raise_for_status()
        assert {p["id"] for p in h.state()["people"].values()} == {"old", "new"}  # nothing merged
        httpx.post(f"{h.server.url}/api/v2/batch", json={"batch": [merge]}, auth=auth).raise_for_status()
        people = {p["id"]: p["attributes"] for p in h.state()["people"].values()}
        assert people == {"new": {"a": 1}}  # merged: the unset attribute moved, the secondary is gone
        httpx.post(f"{h.server.url}/api/v2/batch", json={"batch": [merge]}, auth=auth).raise_for_status()
        assert len(h.state()["merges"]) == 1  # merging again does nothing


def test_a_mass_merge_is_refused_until_approved(h, warehouse):
    spec = people_spec(h)
    rows = people_rows(300)
    h.write_people(warehouse, rows)
    write_merges(warehouse, [])
    h.sync(spec, warehouse)
    # A bad identity rule: every odd person merges into the one before.
    h.write_people(warehouse, rows[::2])
    write_merges(warehouse, [(r["customer_key"], rows[i - 1]["customer_key"]) for i, r in enumerate(rows) if i % 2])
    before = h.requests()
    refused = h.sync(spec, warehouse, max_change_share=0.9)  # the change guard alone would let it through
    assert refused.status == "refused" and "merge 150 of the 300" in refused.message, refused.message
    assert h.requests() == before
    approved = h.sync(spec, warehouse, allow_large_change=True)
    assert approved.status == "succeeded"
    assert query(warehouse, "select count(*) from relay.sync_merges") == [(150,)]


@pytest.mark.parametrize("failpoint", ["after_ack:1", "before_merges", "merged", "after_ack:2"])
def test_a_process_killed_at_each_step_of_a_merge_converges_with_one_merge(monkeypatch, warehouse, failpoint):
    """Steps: the survivor's write acknowledged (after_ack:1), its state written (before_merges), the merge
    acknowledged (merged), the survivor re-asserted (after_ack:2, before that state write)."""
    with CustomerIOHarness(monkeypatch) as h:
        rows = people_rows(6)
        spec = first_sync(h, warehouse, rows)
        after = [{**r, "orders_count": 99} if r["customer_key"] == SURVIVOR else r for r in merged_world(rows)]
        h.write_people(warehouse, after)  # the survivor changes too: its write goes first
        write_merges(warehouse, [(RETIRED, SURVIVOR)])
        outcome = finish(start_sync(spec, warehouse, "--failpoint", failpoint), timeout=60)
        assert outcome["exit"] == CRASH_EXIT, outcome
        result = h.sync(spec, warehouse)
        assert result.status == "succeeded", result.message
        assert h.held() == h.expected(after)  # one person fewer, the survivor exactly the model
        assert len(h.state()["merges"]) == 1  # applied once, whatever the destination was sent
        assert query(warehouse, "select retired_key, outcome from relay.sync_merges") == [(RETIRED, "merged")]
        assert h.sync(spec, warehouse).planned == 0


# ------------------------------------------------------------------ end to end, on sample data
def linked_accounts(con) -> list[tuple[str, int]]:
    """Two people with a paid order whose account email and phone are theirs alone: (customer_key, account)."""
    return con.execute("""
        select records.customer_key, cast(records.record_id as bigint)
        from intermediate.int_identity_records_resolved as records
        inner join shopify.customer as accounts on accounts.id = cast(records.record_id as bigint)
        where records.record_type = 'shopify_customer'
          and lower(accounts.email) in (select lower(email) from shopify.customer group by 1 having count(*) = 1)
          and accounts.phone in (select phone from shopify.customer group by 1 having count(*) = 1)
          and accounts.id in (select customer_id from shopify."order" where financial_status = 'paid'
                              and cancelled_at is null and not coalesce(test, false))
        order by 1 limit 2""").fetchall()


def plant_order(con, order_id: int, account: int, at, *, email_of: int | None = None, phone_of: int | None = None):
    """A copy of one of `account`'s paid orders at `at`; with email_of/phone_of a guest order (no account)
    carrying those accounts' email and phone, which links the two people. Loaded now (a scoped build picks
    it up), whenever it happened."""
    guest = email_of is not None
    con.execute(f"""
        insert into shopify."order"
        select * replace ($id as id, $t as created_at, $t as processed_at, $t as updated_at, $synced as _fivetran_synced
                          {", null as customer_id, (select email from shopify.customer where id = $e) as email, "
                           "(select phone from shopify.customer where id = $p) as phone" if guest else ""})
        from shopify."order"
        where customer_id = $a and cancelled_at is null and not coalesce(test, false) and financial_status = 'paid'
        limit 1""", {"id": order_id, "t": at, "a": account, **({"e": email_of, "p": phone_of} if guest else {}),
                     "synced": max(at, datetime.now(timezone.utc).replace(tzinfo=None))})


def sync_all(warehouse) -> dict[str, object]:
    results = {}
    for spec in pipeline.sync_specs():
        results[spec.name] = pipeline.run_sync(spec, allow_large_change=True)
        assert results[spec.name].status == "succeeded", (spec.name, results[spec.name].message)
    return results


@pytest.mark.slow
def test_a_merge_planted_in_raw_data_leaves_one_person_with_both_histories(emulators, warehouse, monkeypatch):
    monkeypatch.setenv("RELAY_WAREHOUSE", str(warehouse))
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    sample_data.generate(warehouse, customers=500, seed=11, as_of=now)
    run_dbt(warehouse, "build", "--exclude", "resource_type:unit_test")
    with duckdb.connect(str(warehouse)) as con:
        (a, a_account), (b, b_account) = linked_accounts(con)
        for order_id, account in ((9_100_000_001, a_account), (9_100_000_002, b_account)):  # a recent order each: history
            plant_order(con, order_id, account, now - timedelta(hours=1))
    run_dbt(warehouse, "build", "--exclude", "resource_type:unit_test")
    sync_all(warehouse)
    cio = emulators["customerio"].state
    history = {k: {e["id"] for e in cio.event_log if e["person"] == k} for k in (a, b)}
    assert history[a] and history[b]

    with duckdb.connect(str(warehouse)) as con:  # a guest order with a's email and b's phone: one person
        plant_order(con, 9_100_000_003, a_account, now + timedelta(minutes=10), email_of=a_account, phone_of=b_account)
    run_dbt(warehouse, "build", "--exclude", "resource_type:unit_test")
    [(retired, survivor)] = query(warehouse, "select retired_key, surviving_key from marts.identity_merges "
                                             "where retired_key in (?, ?)", [a, b])
    results = sync_all(warehouse)
    assert results["sync_customerio__people"].acked_merge == 1

    # Customer.io: one person holding both histories; the retired person is gone.
    people = {p["id"]: p for p in cio.people.values() if "id" in p}
    assert retired not in people and survivor in people
    assert {e["id"] for e in cio.event_log if e["person"] == survivor} >= history[a] | history[b]
    assert not [e for e in cio.event_log if e["person"] == retired]
    [model] = query(warehouse, "select email, orders_count, lifecycle_stage, vip_tier, winback_eligible "
                               "from syncs.sync_customerio__people where customer_key = ?", [survivor])
    held = people[survivor]["attributes"]
    assert (held["orders_count"], held["lifecycle_stage"], held["vip_tier"]) == model[1:4]
    assert held.get("winback_eligible", False) == model[4]
    if people[survivor].get("email") != model[0]:  # the merge freed the address; this workspace's rule remains
        failures = [f["reason"] for f in cio.failures if f["identifier"] == f"id:{survivor}"]
        assert failures[-1] == "changing email needs the person addressed by cio_id", failures
    # Talon.One: the retired profile is harmless (exit values, no audience); the survivor is the model's.
    talon = emulators["talon_one"].state.to_json()
    assert talon["profiles"][retired]["attributes"]["winback_eligible"] is False
    assert not [a for a in talon["audiences"].values() if retired in a["members"]]
    [(orders,)] = query(warehouse, "select orders_count from syncs.sync_talon_one__profiles where customer_key = ?",
                        [survivor])
    assert talon["profiles"][survivor]["attributes"]["orders_count"] == orders
    # Every destination recorded how the merge reached it.
    outcomes = dict(query(warehouse, "select destination, outcome from relay.sync_merges where retired_key = ?",
                          [retired]))
    assert outcomes["customerio"] == "merged" and outcomes["talon_one"] == "retired"
    assert outcomes["cordial"] in ("exited", "adopted")

    # A rerun sends nothing anywhere.
    requests = {name: len(server.requests) for name, server in emulators.items()}
    assert all(r.planned == 0 for r in sync_all(warehouse).values())
    assert {name: len(server.requests) for name, server in emulators.items()} == requests


def test_a_merged_away_person_is_never_written_again(monkeypatch, warehouse):
    """An earlier write to the retired person of unknown fate, due for re-assertion later, is dropped with the
    merge: re-asserting it would create the person again."""
    with CustomerIOHarness(monkeypatch) as h:
        rows = people_rows(6)
        spec = first_sync(h, warehouse, rows)
        with duckdb.connect(str(warehouse)) as con:
            con.execute("insert into relay.sync_unconfirmed values (?, ?, ?, null, now()::timestamp + interval 1 hour)",
                        [spec.name, RETIRED, RETIRED])
        h.write_people(warehouse, merged_world(rows))
        write_merges(warehouse, [(RETIRED, SURVIVOR)])
        assert h.sync(spec, warehouse).acked_merge == 1
        assert query(warehouse, "select count(*) from relay.sync_unconfirmed where record_key = ?", [RETIRED]) == [(0,)]


def test_a_merge_into_a_survivor_never_written_waits_and_the_retired_person_exits_meanwhile(monkeypatch, warehouse):
    """The survivor is new at the destination and its first write is refused: the merge waits for it."""
    with CustomerIOHarness(monkeypatch) as h:
        rows = people_rows(6)
        spec = first_sync(h, warehouse, [r for i, r in enumerate(rows) if i != 2])
        after = merged_world(rows)
        refused = [{**r, **h.poison} if r["customer_key"] == SURVIVOR else r for r in after]
        h.write_people(warehouse, refused)  # Customer.io refuses the survivor's write
        write_merges(warehouse, [(RETIRED, SURVIVOR)])
        waiting = h.sync(spec, warehouse)
        assert waiting.status == "partial" and waiting.rejected == 1, waiting.message
        assert "1 merges wait for their survivor" in waiting.message, waiting.message
        assert h.state()["merges"] == []  # never a merge into a survivor the destination may not hold as the model says
        assert h.held()[RETIRED] == h.exited(rows[3])  # but the retired person does not stay eligible meanwhile
        assert query(warehouse, "select count(*) from relay.sync_state where record_key = ?", [RETIRED]) == [(1,)]
        h.write_people(warehouse, after)  # fixed: the next run writes the survivor, then merges
        merged = h.sync(spec, warehouse)
        assert (merged.status, merged.acked_merge) == ("succeeded", 1), merged.message
        assert h.held() == h.expected(after)
        assert [m["secondary_id"] for m in h.state()["merges"]] == [RETIRED]
