"""The sample-data generator: deterministic, true to the raw contract, messy on purpose, and appendable."""

import shutil
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
import yaml

from support.project import ROOT
from relay import sample_data

CUSTOMERS = 2000
AS_OF = sample_data.DEFAULT_AS_OF
SOURCES = sorted((ROOT / "dbt_project" / "models" / "staging").glob("*/_*__sources.yml"))
FIXTURE = ROOT / "tests" / "fixtures" / "messy_raw.sql"
# Types a contract data_type may land as.
COMPATIBLE = {"bigint": {"BIGINT", "INTEGER", "HUGEINT"}, "varchar": {"VARCHAR"}, "boolean": {"BOOLEAN"},
              "timestamp": {"TIMESTAMP"}, "double": {"DOUBLE"}}


def contract() -> list[tuple[str, str, str, str, bool]]:
    """(schema, table, column, data_type, required) for every column the sources YAML declares."""
    rows = []
    for path in SOURCES:
        for source in yaml.safe_load(path.read_text())["sources"]:
            for table in source["tables"]:
                for column in table["columns"]:
                    required = column.get("config", {}).get("meta", {}).get("required", False)
                    rows.append((source["name"], table["name"], column["name"], column["data_type"], required))
    return rows


def columns(con) -> dict[tuple[str, str, str], str]:
    return {(s, t, c): d for s, t, c, d in con.execute(
        "select table_schema, table_name, column_name, data_type from information_schema.columns").fetchall()}


def checksums(warehouse: Path) -> dict[str, tuple]:
    """Row count and an order-independent digest of every raw table."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {table: con.execute(f"select count(*), sum(hash(t)::hugeint) from {table} t").fetchone()
                for table in sample_data.RAW_TABLES}


def scalar(warehouse: Path, sql: str, params=()):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, list(params)).fetchone()[0]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """One generated warehouse shared by the read-only tests."""
    warehouse = tmp_path_factory.mktemp("sample") / "warehouse.duckdb"
    sample_data.generate(warehouse, CUSTOMERS)
    return warehouse


def test_same_arguments_give_identical_tables(generated, tmp_path):
    again = tmp_path / "again.duckdb"
    counts = sample_data.generate(again, CUSTOMERS)
    assert checksums(again) == checksums(generated)
    assert counts == {table.replace('"', ""): rows for table, (rows, _) in checksums(again).items()}
    other_seed = tmp_path / "other_seed.duckdb"
    sample_data.generate(other_seed, CUSTOMERS, seed=7)
    differing = {t for t, digest in checksums(other_seed).items() if digest != checksums(generated)[t]}
    assert differing >= {"shopify.customer", 'shopify."order"', "segment.tracks"}


def test_generate_then_append_is_deterministic(tmp_path):
    digests = []
    for name in ["a", "b"]:
        warehouse = tmp_path / f"{name}.duckdb"
        sample_data.generate(warehouse, 500, seed=3)
        sample_data.append(warehouse, 1)
        sample_data.append(warehouse, 2)
        digests.append(checksums(warehouse))
    assert digests[0] == digests[1]


def test_every_contract_column_exists_with_a_compatible_type(generated):
    with duckdb.connect(str(generated), read_only=True) as con:
        landed = columns(con)
    problems = [(schema, table, column, data_type, landed.get((schema, table, column)))
                for schema, table, column, data_type, _ in contract()
                if landed.get((schema, table, column)) not in COMPATIBLE[data_type]]
    assert problems == []


def test_generate_leaves_other_schemas_alone(generated, tmp_path):
    warehouse = tmp_path / "shared.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts; create table marts.keep as select 1 as x")
    sample_data.generate(warehouse, 50)
    assert scalar(warehouse, "select count(*) from marts.keep") == 1


MESSY_CASES = {
    "guest order typed with an account's email, other case or padding": """
        select count(*) from shopify."order" o join shopify.customer c on lower(trim(o.email)) = lower(trim(c.email))
        where o.customer_id is null and o.email != c.email""",
    "placeholder email shared by several guests": """
        select count(*) >= 3 from shopify."order" where customer_id is null and lower(trim(email)) = 'noemail@example.com'""",
    "household email shared by 2-3 accounts": """
        select count(*) from (select lower(trim(email)) from shopify.customer where email like 'the%'
                              group by 1 having count(*) between 2 and 3)""",
    "two accounts sharing a phone in different formats": """
        select count(*) from (select right(regexp_replace(phone, '[^0-9]', '', 'g'), 10) from shopify.customer
                              where phone is not null group by 1 having count(*) = 2 and count(distinct phone) = 2)""",
    "hashed email": "select count(*) from shopify.customer where regexp_full_match(email, '[0-9a-f]{64}')",
    "malformed email": "select count(*) from shopify.customer where email not like '%@%'",
    "padded and mixed-case emails": "select count(*) > 1 and count(*) filter (where email != trim(email)) > 0 from shopify.customer where email != lower(trim(email))",
    "changed email: Salesforce has the old one, an identify links it": """
        select count(*) from salesforce.contact s join segment.identifies i on i.email = s.email
        join shopify.customer c on cast(c.id as varchar) = i.user_id where lower(trim(c.email)) != lower(trim(s.email))""",
    "phones in several formats": """
        select count(distinct regexp_replace(phone, '[0-9]', '9', 'g')) >= 8 and bool_or(phone like '0044%') and bool_or(phone like '+44 20 %')
        from shopify.customer""",
    "refund of an unknown order": """
        select count(*) from shopify.refund r left join shopify."order" o on o.id = r.order_id where o.id is null""",
    "order of a customer with no customer row": """
        select count(*) from shopify."order" o left join shopify.customer c on c.id = o.customer_id
        where o.customer_id is not null and c.id is null""",
    "soft-deleted customers, orders and checkouts": """
        select least((select count(*) from shopify.customer where _fivetran_deleted),
                     (select count(*) from shopify."order" where _fivetran_deleted),
                     (select count(*) from shopify.abandoned_checkout where _fivetran_deleted))""",
    "ring of 20+ accounts sharing one card, WELCOME10 on each first order": """
        select count(distinct o.customer_id) >= 20 from shopify."transaction" t join shopify."order" o on o.id = t.order_id
        join shopify.order_discount_code d on d.order_id = o.id
        where t.payment_credit_card_bin = '423456' and t.payment_credit_card_number = '•••• •••• •••• 4242'
            and upper(trim(d.code)) = 'WELCOME10'""",
    "ring sharing one shipping address": """
        select max(n) >= 10 from (select count(distinct customer_id) n from shopify."order" group by shipping_address_address_1, shipping_address_zip)""",
    "open checkouts 0-4h old": """
        select count(*) from shopify.abandoned_checkout c where completed_at is null
            and created_at > timestamp '2026-11-01' - interval 4 hour
            and not exists (select 1 from shopify."order" o where o.checkout_token = c.token)""",
    "open checkouts 4-24h old": """
        select count(*) from shopify.abandoned_checkout c where completed_at is null
            and created_at between timestamp '2026-11-01' - interval 24 hour and timestamp '2026-11-01' - interval 4 hour
            and not exists (select 1 from shopify."order" o where o.checkout_token = c.token)""",
    "recovered checkout: completed_at set, order carries the token": """
        select count(*) from shopify.abandoned_checkout c join shopify."order" o on o.checkout_token = c.token
        where c.completed_at is not null""",
    "late completion: order present, checkout and Order Completed not yet": """
        select count(*) from shopify.abandoned_checkout c join shopify."order" o on o.checkout_token = c.token
        where c.completed_at is null
            and not exists (select 1 from segment.tracks t where t.event = 'Order Completed' and t.order_id = cast(o.id as varchar))""",
    "win-back age customers (last order 60-180 days ago)": """
        select count(*) from (select customer_id from shopify."order" group by 1
            having max(created_at) between timestamp '2026-11-01' - interval 180 day and timestamp '2026-11-01' - interval 60 day)""",
    "purchases in the last 7 days": """
        select count(*) from shopify."order" where customer_id is not null and created_at > timestamp '2026-11-01' - interval 7 day""",
    "prospects who never ordered": """
        select count(*) from shopify.customer c where not exists (select 1 from shopify."order" o where o.customer_id = c.id)""",
    "anonymous browsing identified later by user id": """
        select count(*) from segment.tracks t join segment.identifies i using (anonymous_id)
        where t.user_id is null and i.user_id is not null and i."timestamp" > t."timestamp" """,
    "anonymous browsing identified by an email only": """
        select count(*) from segment.tracks t join segment.identifies i using (anonymous_id) where i.user_id is null and i.email is not null""",
    "every e-commerce spec event": """
        select count(distinct event) = 6 from segment.tracks where event in
            ('Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed', 'Order Refunded', 'Coupon Applied')""",
    "discount codes typed in several cases": """
        select count(distinct code) >= 3 from shopify.order_discount_code where upper(trim(code)) = 'WELCOME10'""",
    "test and cancelled orders": """
        select least(count(*) filter (where test), count(*) filter (where cancelled_at is not null)) from shopify."order" """,
    "refunds in order_line_refund and refund transactions": """
        select least((select count(*) from shopify.order_line_refund), (select count(*) from shopify."transaction" where kind = 'refund'))""",
    "serial refunders refunding most of 4+ orders": """
        select count(*) from (select o.customer_id from shopify."order" o left join shopify.refund r on r.order_id = o.id
            where o.customer_id is not null group by 1 having count(*) >= 4 and count(r.id) > count(*) / 2)""",
    "unsubscribed, redacted and invalid consent": """
        select count(distinct email_marketing_consent_state) = 3 from shopify.customer
        where email_marketing_consent_state in ('unsubscribed', 'redacted', 'invalid')""",
    "Salesforce overlap in another case, CRM-only and deleted contacts": """
        select bool_or(email != lower(email) and lower(trim(email)) in (select lower(trim(email)) from shopify.customer where email is not null))
            and bool_or(is_deleted) and bool_or(email like '%crm%' or email not in (select email from shopify.customer where email is not null))
        from salesforce.contact""",
}


@pytest.mark.parametrize("case", MESSY_CASES)
def test_messy_case_is_present(generated, case):
    assert scalar(generated, MESSY_CASES[case]), case


def test_append_only_adds_activity_after_the_previous_as_of(generated, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    before = tmp_path / "before.duckdb"
    shutil.copy(generated, warehouse)
    shutil.copy(generated, before)

    counts = sample_data.append(warehouse, 12)

    with duckdb.connect(str(warehouse)) as con:
        assert con.execute("select as_of from _relay_sample.params").fetchone()[0] == AS_OF + timedelta(hours=12)
        con.execute(f"attach '{before}' as before (read_only)")
        for table, column in sample_data.RAW_TABLES.items():
            new_rows = f"(from {table} except all from before.{table})"
            added, stale = con.execute(f"select count(*), count(*) filter (where {column} <= ?) from {new_rows}",
                                       [AS_OF]).fetchone()
            assert (added, stale) == (counts[table.replace('"', "")], 0), table
        # New things happen after the old as-of; only orders (refunds) and checkouts (completions) are updated.
        for table in ["shopify.customer", 'shopify."order"', "shopify.abandoned_checkout", "shopify.refund"]:
            assert con.execute(f"""select count(*) from (from {table} except all from before.{table}) as new
                                   where created_at <= ? and id not in (select id from before.{table})""",
                               [AS_OF]).fetchone()[0] == 0, table
        updated = {table for table in sample_data.RAW_TABLES
                   if con.execute(f"select count(*) from (from before.{table} except all from {table})").fetchone()[0]}
        assert updated <= {'shopify."order"', "shopify.abandoned_checkout"}
        # The appended hours carry the story forward: late completions arrive, carts and win-backs convert.
        assert con.execute("""select count(*) from shopify.abandoned_checkout c join before.shopify.abandoned_checkout b using (id)
                              where b.completed_at is null and c.completed_at is not null""").fetchone()[0] > 0
        assert con.execute("""select count(*) from (from shopify."order" except from before.shopify."order") o
                              join before.shopify.abandoned_checkout c on c.token = o.checkout_token
                              where c.completed_at is null""").fetchone()[0] > 0
        assert con.execute("""select count(*) from (from shopify."order" except from before.shopify."order") o
                              join (select customer_id, max(created_at) as last_at from before.shopify."order" group by 1) b
                                  using (customer_id)
                              where b.last_at between ? - interval 180 day and ? - interval 60 day""", [AS_OF, AS_OF]).fetchone()[0] > 0
    assert counts['shopify.order'] > 0 and counts['segment.tracks'] > 0 and counts['shopify.customer'] > 0


def test_fixture_loads_and_covers_the_contract(tmp_path):
    with duckdb.connect(str(tmp_path / "fixture.duckdb")) as con:
        con.execute(FIXTURE.read_text())
        landed = columns(con)
        rows = {(schema, table): con.execute(f'select count(*) from {schema}."{table}"').fetchone()[0]
                for schema, table, *_ in contract()}
    # Every declared column is there; timestamps may land as text (staging cleans them).
    missing = [(schema, table, column) for schema, table, column, data_type, _ in contract()
               if landed.get((schema, table, column)) not in COMPATIBLE[data_type] | ({"VARCHAR"} if data_type == "timestamp" else set())]
    assert missing == []
    assert all(rows.values()), rows
    assert FIXTURE.read_text().count("-- CASE:") >= 30
