"""The shipped event syncs end to end (dbt on sample data, the three emulators over HTTP; `make test-e2e`):
a purchase loaded twice by the loader and tracked twice by Segment is one Order Completed at each destination;
a person who enters a segment, leaves it and enters it again gets two Segment Entered events and one Segment
Exited; a rerun sends nothing."""

from datetime import timedelta

import duckdb
import pytest

from relay import pipeline, sample_data
from sinks.declarations import load_specs
from support.dbt import run_dbt
from support.project import DBT_DIR

pytestmark = pytest.mark.e2e

SEGMENT = "suppress_recent_purchasers"
ORDER = {"attributes": 0, "membership": 1, "events": 2}  # a person's events follow the person


def sync_all() -> dict[str, object]:
    specs = sorted(load_specs(DBT_DIR / "target" / "manifest.json"), key=lambda s: ORDER[s.object])
    results = {spec.name: pipeline.run_sync(spec, allow_large_change=True) for spec in specs}
    for name, result in results.items():
        assert result.status == "succeeded" and not result.rejected, (name, result.message)
    return results


def build(warehouse) -> None:
    run_dbt(warehouse, "build", "--exclude", "resource_type:unit_test")


def buy(con, account: int, order_id: int, at) -> None:
    """An order of `account` at `at`, landed twice by the loader and tracked twice by Segment."""
    for synced in (at + timedelta(minutes=1), at + timedelta(minutes=3)):
        con.execute("""
            insert into shopify."order"
            select * replace ($id as id, $at as created_at, $at as processed_at, $at as updated_at,
                              $synced as _fivetran_synced, null as cancelled_at, false as test, 'paid' as financial_status)
            from shopify."order" where customer_id = $account limit 1""",
                    {"id": order_id, "at": at, "synced": synced, "account": account})
    for n in (1, 2):
        con.execute("""
            insert into segment.tracks
            select * replace ($id as id, cast($account as varchar) as user_id, $at as timestamp, $at as received_at,
                              $at as sent_at, $at as uuid_ts, cast($order as varchar) as order_id)
            from segment.tracks where event = 'Order Completed' limit 1""",
                    {"id": f"dup-track-{order_id}-{n}", "account": account, "at": at, "order": order_id})


def activity(con, at) -> None:
    """Someone else's page view at `at`: moves the data clock."""
    con.execute("""
        insert into segment.tracks
        select * replace ('clock-' || cast(epoch($at) as varchar) as id, $at as timestamp, $at as received_at,
                          $at as sent_at, $at as uuid_ts)
        from segment.tracks where event = 'Product Viewed' limit 1""", {"at": at})


def events_of(emulators, key: str, email: str) -> dict[str, list]:
    cio = [(e["name"], e["attributes"]) for e in emulators["customerio"].state.to_json()["event_log"] if e["person"] == key]
    talon = [(e["type"], e["attributes"]) for e in emulators["talon_one"].state.to_json()["events"] if e["profileId"] == key]
    cordial_state = emulators["cordial"].state.to_json()
    cid = next(c for c, contact in cordial_state["contacts"].items() if contact["email"] == email)
    cordial = [(a["a"], a["properties"]) for a in cordial_state["activities"] if a["cID"] == cid]
    return {"customerio": cio, "talon_one": talon, "cordial": cordial}


def test_one_order_completed_and_an_entry_per_spell_at_every_destination(emulators, warehouse):
    sample_data.generate(warehouse, customers=300, seed=13)
    build(warehouse)
    sync_all()
    with duckdb.connect(str(warehouse)) as con:
        clock, = con.execute("select as_of from intermediate.int_as_of").fetchone()
        key, account, email = con.execute(f"""
            select customers.customer_key, customers.shopify_customer_id, customers.cordial_email
            from marts.customers as customers
            inner join marts.customer_lifecycle as lifecycle using (customer_key)
            where customers.shopify_customer_id is not null and customers.cordial_email is not null
              and lifecycle.email_marketing_consent <> 'unsubscribed' and lifecycle.lifetime_count_orders > 0
              and customers.customer_key not in (select customer_key from marts.segment_memberships
                                                 where segment in ('{SEGMENT}', 'suppress_holdout'))
            order by 1 limit 1""").fetchone()
        buy(con, account, 99200001, clock + timedelta(minutes=10))
    build(warehouse)
    sync_all()
    with duckdb.connect(str(warehouse)) as con:  # the clock passes the suppression's end: they leave it
        activity(con, clock + timedelta(days=8, hours=1))
    build(warehouse)
    sync_all()
    with duckdb.connect(str(warehouse)) as con:
        buy(con, account, 99200002, clock + timedelta(days=8, hours=2))
    build(warehouse)
    sync_all()
    rerun = sync_all()
    assert all(r.planned == 0 for r in rerun.values()), {n: r.planned for n, r in rerun.items()}

    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from marts.customer_events where event_id = 'order_completed:99200001'"
                           ).fetchone()[0] == 1
    held = events_of(emulators, key, email)
    for destination in ("customerio", "cordial"):
        orders = [a["order_id"] for name, a in held[destination] if name == "Order Completed"]
        assert sorted(orders) == [99200001, 99200002], (destination, held[destination])
    for destination, entered, exited in (("customerio", "Segment Entered", "Segment Exited"),
                                         ("cordial", "Segment Entered", "Segment Exited"),
                                         ("talon_one", "segment_entered", "segment_exited")):
        spells = [(name, a["segment"]) for name, a in held[destination] if a.get("segment") == SEGMENT]
        assert sorted(spells) == sorted([(entered, SEGMENT), (exited, SEGMENT), (entered, SEGMENT)]), (destination, spells)
