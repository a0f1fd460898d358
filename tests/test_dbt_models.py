"""The dbt models on generated sample data and on the hand-written messy fixture.

One module-scoped build of 3,000 generated customers carries most assertions; dbt runs a handful of
times in total (each invocation starts up for seconds): build, rebuild on unchanged data, a full refresh of the
identity memory, append an hour and rebuild, and one build of the messy fixture.
"""

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from relay import sample_data
from support.dbt import run_dbt
from support.project import ROOT

pytestmark = pytest.mark.slow

SYNC_MODELS = [
    "sync_customerio__people",
    "sync_customerio__segment_members",
    "sync_cordial__contacts",
    "sync_cordial__list_members",
    "sync_talon_one__profiles",
    "sync_talon_one__audience_members",
]
MESSY_FIXTURE = ROOT / "tests" / "fixtures" / "messy_raw.sql"


def query(warehouse: Path, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def scalar(warehouse: Path, sql: str, params=None):
    return query(warehouse, sql, params)[0][0]


def sync_checksums(warehouse: Path) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent digest of every sync model's full contents."""
    return {
        name: tuple(query(warehouse, f"""
            select count(*), coalesce(md5(string_agg(md5(cast(t as varchar)), '' order by md5(cast(t as varchar)))), '')
            from syncs.{name} as t
        """)[0])
        for name in SYNC_MODELS
    }


def identity_keys(warehouse: Path) -> dict[str, str]:
    return dict(query(warehouse, "select identifier, customer_key from intermediate.int_identifiers_resolved"))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """3,000 generated customers, built once; later tests mutate this warehouse in file order."""
    warehouse = tmp_path_factory.mktemp("sample") / "warehouse.duckdb"
    sample_data.generate(warehouse, customers=3000)
    run_dbt(warehouse, "build")
    return warehouse


def test_build_passes_and_segments_are_live(sample):
    # The sample data is as of 2026-11-01: the clock comes from the data and carts are open.
    as_of, source = query(sample, "select as_of, as_of_source from intermediate.int_as_of")[0]
    assert source == "newest_activity"
    assert as_of.date().isoformat() in {"2026-10-31", "2026-11-01"}
    sizes = dict(query(sample, "select segment, count(*) from marts.segment_memberships group by 1"))
    for segment in ["cart_0_4h", "cart_4_24h", "winback_eligible", "vip_gold", "discount_abusers",
                    "suppress_recent_purchasers", "suppress_unsubscribed", "suppress_holdout"]:
        assert sizes.get(segment, 0) > 0, (segment, sizes)
    # One row per person everywhere, and every person is a Customer.io person and a Talon.One profile.
    customers = scalar(sample, "select count(*) from marts.customers")
    for relation in ["marts.customer_lifecycle", "marts.customer_segments", "syncs.sync_customerio__people",
                     "syncs.sync_talon_one__profiles"]:
        assert scalar(sample, f"select count(*) from {relation}") == customers, relation


# The segments as the macro registry declared them before each became a model of its own (models/segments/):
# segment -> (condition on marts.customer_segments, category, Customer.io, Cordial, Talon.One name).
FORMER_CATALOG = {
    "cart_0_4h": ("cart_window = '0-4h'", "promotional", "wh_cart_0_4h", "wh | cart | 0-4h | no purchase", "wh_cart_0_4h"),
    "cart_4_24h": ("cart_window = '4-24h'", "promotional", "wh_cart_4_24h", "wh | cart | 4-24h | no purchase", "wh_cart_4_24h"),
    "winback_eligible": ("winback_eligible", "promotional", "wh_winback_eligible", "wh | winback | eligible",
                         "wh_winback_eligible"),
    "vip_gold": ("vip_tier = 'gold'", "classification", "wh_vip_gold", "wh | vip | gold", "wh_vip_gold"),
    "vip_silver": ("vip_tier = 'silver'", "classification", "wh_vip_silver", "wh | vip | silver", "wh_vip_silver"),
    "vip_bronze": ("vip_tier = 'bronze'", "classification", "wh_vip_bronze", "wh | vip | bronze", "wh_vip_bronze"),
    "discount_abusers": ("is_discount_abuser", "guardrail", "wh_discount_abusers", "wh | guardrail | discount abusers",
                         "wh_discount_abusers"),
    "suppress_recent_purchasers": ("is_recent_purchaser", "suppression", "wh_suppress_recent_purchasers",
                                   "wh | suppress | recent purchasers", None),
    "suppress_unsubscribed": ("is_unsubscribed", "suppression", "wh_suppress_unsubscribed", "wh | suppress | unsubscribed", None),
    "suppress_serial_refunders": ("is_serial_refunder", "suppression", "wh_suppress_serial_refunders",
                                  "wh | suppress | serial refunders", None),
    "suppress_holdout": ("is_holdout", "suppression", "wh_suppress_holdout", "wh | suppress | holdout", None),
}


def test_migrated_segments_keep_the_former_memberships(sample):
    columns = "customer_key, segment, segment_category, customerio_segment, cordial_list, talon_one_audience"
    former = set()
    for segment, (condition, category, *names) in FORMER_CATALOG.items():
        former |= {(key, segment, category, *names) for (key,) in query(
            sample, f"select customer_key from marts.customer_segments where {condition}")}
    now = set(query(sample, f"select {columns} from marts.segment_memberships where segment in "
                            f"({', '.join(repr(s) for s in FORMER_CATALOG)})"))
    assert former and now == former


def test_identity_on_sample_data(sample):
    # Guest orders typed with an account's email (any case, padded) belong to that account's person.
    mismatched = scalar(sample, """
        select count(*)
        from staging.stg_shopify__orders as guest
        inner join staging.stg_shopify__customers as account on guest.email = account.email
        inner join marts.customer_identifiers as email_id on email_id.identifier = 'email:' || guest.email
        inner join intermediate.int_identity_records_resolved as guest_record
            on guest_record.record_type = 'shopify_order' and guest_record.record_id = cast(guest.order_id as varchar)
        inner join intermediate.int_identity_records_resolved as account_record
            on account_record.record_type = 'shopify_customer' and account_record.record_id = cast(account.customer_id as varchar)
        where guest.customer_id is null and email_id.is_linkable and guest_record.customer_key != account_record.customer_key
    """)
    joined = scalar(sample, """
        select count(*)
        from staging.stg_shopify__orders as guest
        inner join staging.stg_shopify__customers as account on guest.email = account.email
        where guest.customer_id is null
    """)
    assert joined > 0 and mismatched == 0
    # The shared placeholder email glues nobody: the accounts using it stay distinct people.
    placeholder_accounts = query(sample, """
        select count(*), count(distinct records.customer_key)
        from staging.stg_shopify__customers as account
        inner join marts.customer_identifiers as email_id on email_id.identifier = 'email:' || account.email
        inner join intermediate.int_identity_records_resolved as records
            on records.record_type = 'shopify_customer' and records.record_id = cast(account.customer_id as varchar)
        where email_id.guard_reason = 'placeholder'
    """)[0]
    assert placeholder_accounts[0] == placeholder_accounts[1]
    assert scalar(sample, "select count(*) from marts.customers where cordial_email like 'noemail@%'") == 0


def test_rebuild_on_unchanged_data_changes_no_sync_row(sample):
    before = sync_checksums(sample)
    assert all(rows > 0 for rows, _ in before.values()), before
    run_dbt(sample, "build", "--exclude", "resource_type:unit_test")
    assert sync_checksums(sample) == before


def test_full_refresh_of_identity_memory_gives_the_same_keys(sample):
    before = identity_keys(sample)
    run_dbt(sample, "run", "--full-refresh", "--select", "int_identifiers_assigned", "int_identifiers_resolved")
    assert identity_keys(sample) == before


def test_purchase_after_an_hour_leaves_winback_and_cart(sample):
    # The frequent path's build is scoped: it follows a complete build (an earlier test's partial run is not).
    if scalar(sample, "select completed_at is null from relay.dbt_builds order by started_at desc limit 1"):
        run_dbt(sample, "build", "--exclude", "resource_type:unit_test")
    old_as_of = scalar(sample, "select as_of from intermediate.int_as_of")
    winback = query(sample, """
        select segments.customer_key, customers.shopify_customer_id
        from marts.customer_segments as segments
        inner join marts.customers as customers using (customer_key)
        where segments.winback_eligible and customers.shopify_customer_id is not null
        order by 1 limit 1
    """)[0]
    cart = query(sample, """
        select customer_key, cart_checkout_token from marts.customer_segments
        where cart_window is not null and cart_checkout_token not like '%:%'
        order by 1 limit 1
    """)[0]
    before = sync_checksums(sample)

    sample_data.append(sample, hours=1)
    # Besides the generated hour: the winback customer buys on their account, and the cart is completed
    # as a guest checkout that only the checkout token ties to the person.
    with duckdb.connect(str(sample)) as con:
        con.execute("""
            insert into shopify."order" by name
            select * from (values
                (990000000001, ?, 'winback.buyer@example.com', ?, 120.0, 'paid', ?, ?),
                (990000000002, null, null, ?, 80.0, 'paid', ?, ?)
            ) as v(id, customer_id, email, created_at, total_price, financial_status, checkout_token, _fivetran_synced)
        """, [winback[1], old_as_of + timedelta(minutes=10), "winback-order", old_as_of + timedelta(minutes=11),
              old_as_of + timedelta(minutes=20), cart[1], old_as_of + timedelta(minutes=21)])
    run_dbt(sample, "build", "--exclude", "resource_type:unit_test")

    assert scalar(sample, "select is_scoped from intermediate.int_scope_watermark")
    assert scalar(sample, "select as_of from intermediate.int_as_of") > old_as_of
    buyers = {row[0] for row in query(sample, """
        select customer_key from intermediate.int_orders_attributed
        where created_at > ? and customer_key is not null and not is_test_order
        union
        select customer_key from marts.cart_abandonments where converted_at > ?
    """, [old_as_of, old_as_of])}
    assert {winback[0], cart[0]} <= buyers
    still_targeted = query(sample, """
        select customer_key, winback_eligible, cart_window from marts.customer_segments
        where (winback_eligible or cart_window is not null) and list_contains(?, customer_key)
    """, [sorted(buyers)])
    assert still_targeted == []
    # ... and what the destinations are told agrees, within this (frequent-path) rebuild.
    promotional = "('wh_winback_eligible', 'wh_cart_0_4h', 'wh_cart_4_24h')"
    for relation in ["syncs.sync_customerio__segment_members", "syncs.sync_talon_one__audience_members"]:
        assert scalar(sample, f"select count(*) from {relation} where audience in {promotional} "
                              "and list_contains(?, customer_key)", [sorted(buyers)]) == 0
    assert scalar(sample, "select winback_eligible from syncs.sync_talon_one__profiles where customer_key = ?",
                  [winback[0]]) is False
    # Talon.One cannot unset a time: the offer's end it holds moves to the purchase, never to null.
    assert scalar(sample, "select winback_eligible_until from syncs.sync_talon_one__profiles where customer_key = ?",
                  [winback[0]]) == (old_as_of + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert sync_checksums(sample) != before


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    if not MESSY_FIXTURE.exists():
        pytest.skip(f"{MESSY_FIXTURE} is not there yet")
    warehouse = tmp_path_factory.mktemp("messy") / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(MESSY_FIXTURE.read_text())
    run_dbt(warehouse, "build")
    return warehouse


def test_messy_fixture_builds_and_resolves_identities(messy):
    people = scalar(messy, "select count(*) from marts.customers")
    assert people > 0
    # Guest checkouts typed with an account's email join that account.
    assert scalar(messy, """
        select count(*)
        from staging.stg_shopify__orders as guest
        inner join staging.stg_shopify__customers as account on guest.email = account.email
        inner join marts.customer_identifiers as email_id
            on email_id.identifier = 'email:' || guest.email and email_id.is_linkable
        left join intermediate.int_identity_records_resolved as guest_record
            on guest_record.record_type = 'shopify_order' and guest_record.record_id = cast(guest.order_id as varchar)
        left join intermediate.int_identity_records_resolved as account_record
            on account_record.record_type = 'shopify_customer' and account_record.record_id = cast(account.customer_id as varchar)
        where guest.customer_id is null
            and guest_record.customer_key is distinct from account_record.customer_key
    """) == 0
    # Placeholder emails never glue two accounts together nor become anyone's address.
    glued = query(messy, """
        select email_id.identifier, count(*) as accounts, count(distinct records.customer_key) as people
        from staging.stg_shopify__customers as account
        inner join marts.customer_identifiers as email_id on email_id.identifier = 'email:' || account.email
        inner join intermediate.int_identity_records_resolved as records
            on records.record_type = 'shopify_customer' and records.record_id = cast(account.customer_id as varchar)
        where not email_id.is_linkable
        group by 1
        having count(*) != count(distinct records.customer_key)
    """)
    assert glued == []
    assert scalar(messy, """
        select count(*) from marts.customers as customers
        inner join marts.customer_identifiers as email_id on email_id.identifier = 'email:' || customers.email
        where not email_id.is_linkable and email_id.guard_reason != 'shared_by_accounts'
    """) == 0
    # A shared address links nobody but is exactly one person's contact address.
    assert query(messy, """
        select email_id.identifier, count(customers.customer_key)
        from marts.customer_identifiers as email_id
        left join marts.customers as customers on email_id.identifier = 'email:' || customers.email
        where email_id.guard_reason = 'shared_by_accounts'
        group by 1
        having count(customers.customer_key) != 1
    """) == []


def test_messy_fixture_cases(messy):
    def person_of(record_type: str, record_id) -> str | None:
        rows = query(messy, "select customer_key from intermediate.int_identity_records_resolved "
                            "where record_type = ? and record_id = ?", [record_type, str(record_id)])
        return rows[0][0] if rows else None

    account = lambda customer_id: person_of("shopify_customer", customer_id)  # noqa: E731
    # One person with two accounts on one phone (typed two ways) is one customer ...
    assert account(1009) is not None and account(1009) == account(1010)
    # ... but a household sharing an email stays two people; the shared address is the contact of the
    # account updated last (1007), not of both (one inbox, one message) and not of nobody.
    assert account(1007) != account(1008)
    assert query(messy, "select customer_key from marts.customers where email = 'the.parkers@example.com'") == [(account(1007),)]
    # A hashed email (any case) links the records carrying the same digest, and is never a contact address.
    assert person_of("salesforce_contact", "003FIX0000000006IAW") == account(1004)
    digest = "e1ddd824e792ed0d638331be4ec4b5404d70a892d13680edaa5bf80353461d0d"
    assert scalar(messy, "select is_linkable from marts.customer_identifiers where identifier = ?", [f"email_hash:{digest}"])
    for relation in ("marts.customers", "syncs.sync_customerio__people", "syncs.sync_cordial__contacts",
                     "syncs.sync_talon_one__profiles"):
        assert scalar(messy, f"select count(*) from {relation} as r where lower(cast(r as varchar)) like '%{digest}%'") == 0, relation
    # A guest checkout typed with an account's email in capitals joins the account; so does a guest cart.
    assert person_of("shopify_order", 5008) == account(1012)
    assert person_of("shopify_checkout", 3002) == account(1015)
    # The placeholder email glues neither the POS account nor the three guests nor the CRM contact.
    placeholder_people = {account(1006), person_of("shopify_order", 5005), person_of("shopify_order", 5006),
                          person_of("salesforce_contact", "003FIX0000000005IAW")}
    assert None not in placeholder_people and len(placeholder_people) == 4
    assert person_of("shopify_order", 5007) is None  # only the placeholder: belongs to nobody
    # A changed email: the old address on an order, an identify and the CRM is still the same person,
    # and the contact email is the account's current one.
    assert {person_of("shopify_order", 5025), person_of("segment_identify", "ajs-fix-id-03"),
            person_of("salesforce_contact", "003FIX0000000002IAW")} == {account(1011)}
    assert scalar(messy, "select email from marts.customers where customer_key = ?", [account(1011)]) == "jon.new@example.com"
    # Anonymous browsing, identified later, belongs to the person; the hashed email's account keeps its order's address.
    assert scalar(messy, "select customer_key from intermediate.int_events_attributed where event_id = 'ajs-fix-01'") == account(1014)
    assert scalar(messy, "select email from marts.customers where customer_key = ?", [account(1004)]) == "dan.wu@example.com"
    # Soft-deleted rows are gone; the order of an erased account still makes a person.
    assert account(1013) is None and person_of("shopify_order", 5009) is not None

    segments = {row[0]: row[1:] for row in query(messy, """
        select customer_key, cart_window, cart_stage, winback_eligible, is_discount_abuser, discount_abuse_reason, suppression_reason
        from marts.customer_segments
    """)}
    assert segments[account(1014)][:2] == ("0-4h", "0-4h")        # open cart, logged in
    assert segments[account(1015)][:2] == ("4-24h", "4-24h")      # open cart as a guest with the account's email
    assert segments[account(1017)][1] == "converted"              # order landed before the checkout completion
    assert segments[account(1016)][1] == "converted"
    assert segments[account(1001)][2] is True                     # lapsed 139 days, within day 60-180
    for ring_account in (1018, 1019, 1020):
        assert segments[account(ring_account)][3:5] == (True, "shared_ring")
    assert segments[account(1021)][3] is True                     # a code on every order
    assert segments[account(1022)][5] == "serial_refunder"
    assert segments[account(1002)][5] == "recent_purchaser"
    assert segments[account(1004)][5] == "unsubscribed"


def test_data_health_counts_each_drop_reason_on_the_messy_fixture(messy):
    """marts.data_health names what the pipeline set aside or cannot reach, with counts a person can check
    against the fixture's CASE comments; over a threshold, its check warns."""
    rows = {(check, subject, reason): (affected, examined, status) for check, subject, reason, affected, examined, status in query(messy, """
        select check_name, subject, reason, affected_rows, examined_rows, status from marts.data_health
        where measured_at = (select max(measured_at) from marts.data_health)""")}
    expected = {
        ("rows_set_aside", "shopify.customer", "superseded_version"): 1,   # 1012 loaded twice
        ("rows_set_aside", "shopify.customer", "soft_deleted"): 1,         # 1013
        ("rows_set_aside", "shopify.order", "future_dated"): 1,            # 5030
        ("rows_set_aside", "segment.tracks", "superseded_version"): 1,     # a duplicate delivery
        ("rows_set_aside", "salesforce.contact", "soft_deleted"): 1,       # the recycle bin
        ("contact_values_unusable", "shopify.customer.email", "hashed"): 1,   # 1004
        ("contact_values_unusable", "salesforce.contact.email", "hashed"): 1,  # its CRM twin
        ("contact_values_unusable", "shopify.customer.email", "invalid"): 1,  # 1003: no @
        ("identifiers_not_linking", "email", "placeholder"): 1,
        ("identifiers_not_linking", "email", "shared_by_accounts"): 1,     # the Parkers
        ("contact_address_withheld", "email", "held_by_another_account"): 1,
        ("orphans", "shopify.order", "no_person"): 1,                      # 5007: only the placeholder
        ("unreachable", "talon_one", "no_integration_id"): 0,
    }
    assert {key: rows.get(key, (None,))[0] for key in expected} == expected
    assert rows[("identifiers_not_linking", "email", "shared_by_accounts")][2] == "warn"
    assert {status for _, _, status in rows.values()} <= {"ok", "warn", "info"}
    # The warn tests name the checks over their thresholds, one Dagster check each.
    results = json.loads((messy.parent / "dbt" / "target" / "run_results.json").read_text())["results"]
    warned = {r["unique_id"].split(".")[2] for r in results if r["status"] == "warn"}
    assert "data_health_within_threshold_data_health_identifiers_not_linking" in warned


def test_a_pinned_clock_earlier_than_the_data_builds_consistently(tmp_path):
    """`relay build --as-of` (the dbt var as_of) evaluates every model at that moment: orders after it count
    nowhere, and the data-health tests agree."""
    warehouse = tmp_path / "pinned.duckdb"
    sample_data.generate(warehouse, customers=400, seed=5)
    run_dbt(warehouse, "build", vars='{as_of: "2026-10-15 00:00:00"}')
    assert scalar(warehouse, "select cast(as_of as varchar) from intermediate.int_as_of") == "2026-10-15 00:00:00"
    assert scalar(warehouse, "select max(most_recent_order_timestamp) <= timestamp '2026-10-15' "
                             "from marts.customer_lifecycle")
    # A true clock: what appeared after T does not exist in the build, people included.
    later = [row[0] for row in query(warehouse, "select id from shopify.customer where created_at > timestamp '2026-10-15'")]
    assert later
    people_of_later = """
        select count(*) from intermediate.int_identity_records_resolved
        where record_type = 'shopify_customer' and cast(record_id as bigint) in (select id from shopify.customer
                                                                                 where created_at > timestamp '2026-10-15')"""
    assert scalar(warehouse, people_of_later) == 0
    assert scalar(warehouse, "select count(*) from syncs.sync_customerio__people where shopify_customer_id in "
                             "(select id from shopify.customer where created_at > timestamp '2026-10-15')") == 0
    for relation, stamp in [("stg_shopify__orders", "created_at"), ("stg_shopify__refunds", "created_at"),
                            ("stg_shopify__abandoned_checkouts", "created_at"), ("stg_shopify__transactions", "created_at"),
                            ("stg_segment__tracks", "least(occurred_at, received_at)"),
                            ("stg_segment__identifies", "least(occurred_at, received_at)")]:
        assert scalar(warehouse, f"select coalesce(max({stamp}) <= timestamp '2026-10-15', true) from staging.{relation}"), relation
    assert scalar(warehouse, "select count(*) from staging.stg_shopify__orders where cancelled_at > timestamp '2026-10-15'") == 0
    # The next build without the var is not scoped off the pinned one: the later people are back.
    run_dbt(warehouse, "run", "--select", "+customers")
    assert scalar(warehouse, people_of_later) == len(later)
