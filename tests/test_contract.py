"""The raw-data contract: documented once (sources YAML), enforced by staging, mirrored in the README."""

import duckdb

from support.dbt import create_contract_tables, run_dbt
from support.project import ROOT
from relay import contract


def test_readme_documents_the_contract_exactly():
    readme = (ROOT / "README.md").read_text()
    section = readme.split(contract.README_BEGIN, 1)[1].split(contract.README_END, 1)[0]
    assert section.strip() == contract.markdown().strip(), "run `relay contract --update-readme`"
    for table in contract.sources():
        assert f"`{table['source']}.{table['table']}`" in section


def test_contract_covers_the_documented_raw_tables():
    tables = {(t["source"], t["table"]) for t in contract.sources()}
    shopify = {"customer", "customer_tag", "order", "order_line", "order_discount_code", "discount_allocation",
               "refund", "order_line_refund", "transaction", "abandoned_checkout",
               "abandoned_checkout_discount_code", "shop", "product"}
    assert {("shopify", t) for t in shopify} | {("segment", "tracks"), ("segment", "identifies"),
                                               ("salesforce", "contact")} == tables
    for t in contract.sources():
        assert any(c["required"] for c in t["columns"]), f"{t['table']} declares no required column"
        if t["source"] != "segment":
            assert "_fivetran_synced" in {c["name"] for c in t["columns"]}


def test_staging_builds_with_absent_optional_sources_and_extra_columns(warehouse):
    create_contract_tables(warehouse, skip_sources={"salesforce", "segment"})
    result = run_dbt(warehouse, "build", "--select", "staging")
    assert "Optional raw table salesforce.contact not found" in result.stdout
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("select count(*) from staging.stg_salesforce__contacts").fetchone() == (0,)
    assert con.execute("select count(*) from staging.stg_segment__tracks").fetchone() == (0,)
    assert "_loader_extra" not in {r[0] for r in con.execute("describe staging.stg_shopify__customers").fetchall()}


def test_missing_required_column_or_table_names_it(warehouse):
    create_contract_tables(warehouse, drop_columns={"shopify.order.total_price"})
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table shopify.customer")  # a required table (shopify.order is the other)
    result = run_dbt(warehouse, "build", "--select", "stg_shopify__orders", "stg_shopify__customers", check=False)
    assert result.returncode != 0
    assert "Raw table shopify.order" in result.stdout and "total_price (double)" in result.stdout
    assert "Raw table shopify.customer not found" in result.stdout


def test_missing_optional_column_becomes_null(warehouse):
    create_contract_tables(warehouse, drop_columns={"shopify.customer.phone", "shopify.customer.currency"})
    con = duckdb.connect(str(warehouse))
    con.execute("insert into shopify.customer (id, email, created_at, updated_at, _fivetran_synced) "
                "values (1, 'a@example.com', '2026-01-01', '2026-01-01', '2026-01-01')")
    con.close()
    run_dbt(warehouse, "run", "--select", "stg_shopify__customers")
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("select customer_id, phone, currency from staging.stg_shopify__customers").fetchall() == [(1, None, None)]


def test_staging_cleans_messy_values(warehouse):
    create_contract_tables(warehouse)
    con = duckdb.connect(str(warehouse))
    con.execute("alter table shopify.customer alter created_at type varchar")
    con.execute("""
        insert into shopify.customer (id, email, phone, created_at, updated_at, _fivetran_synced, _fivetran_deleted, email_marketing_consent_state) values
        (1, '\ufeff  Jane.Doe@Example.COM ', '+1 (415) 555-0100', '2026-01-02 03:04:05   ', '2026-01-02', '2026-01-02', false, 'SUBSCRIBED'),
        (2, 'not-an-email', '415.555.0101', '2026-01-02', '2026-01-02', '2026-01-02', null, null),
        (3, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', '0044 20 7946 0000', '2026-01-02', '2026-01-02', '2026-01-02', false, null),
        (4, 'deleted@example.com', null, '2026-01-02', '2026-01-02', '2026-01-02', true, null),
        (5, null, '12', '2026-01-02', '2026-01-02', '2026-01-02', false, null)
    """)
    con.close()
    run_dbt(warehouse, "run", "--select", "stg_shopify__customers")
    con = duckdb.connect(str(warehouse), read_only=True)
    rows = con.execute("select customer_id, email, phone, created_at::varchar, email_consent_state "
                       "from staging.stg_shopify__customers order by 1").fetchall()
    assert rows == [
        (1, "jane.doe@example.com", "+14155550100", "2026-01-02 03:04:05", "subscribed"),
        (2, None, "+14155550101", "2026-01-02 00:00:00", None),
        (3, None, "+442079460000", "2026-01-02 00:00:00", None),
        (5, None, None, "2026-01-02 00:00:00", None),
    ]


def test_raw_tables_can_be_parquet_files(warehouse, tmp_path):
    create_contract_tables(warehouse, extra_column=False)
    landing = tmp_path / "landing"
    landing.mkdir()
    con = duckdb.connect(str(warehouse))
    con.execute("insert into shopify.customer (id, email, created_at, updated_at, _fivetran_synced) "
                "values (7, 'file@example.com', '2026-01-01', '2026-01-01', '2026-01-01')")
    for (table,) in con.execute("select table_name from information_schema.tables where table_schema = 'shopify'").fetchall():
        con.execute(f"copy shopify.\"{table}\" to '{landing}/{table}.parquet' (format parquet)")
    con.execute("drop schema shopify cascade")
    con.close()
    run_dbt(warehouse, "run", "--select", "staging.shopify",
            vars=f"{{shopify_external_location: '{landing}/{{name}}.parquet'}}")
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("select customer_id, email from staging.stg_shopify__customers").fetchall() == [(7, "file@example.com")]


def test_a_store_with_only_customers_orders_and_lines_builds_and_syncs(emulators, warehouse):
    """Only shopify.customer and shopify.order are required: a store that never used discount codes,
    refunds, checkouts or tags (and has no events or CRM) builds, segments and syncs, and says what it lacked."""
    from relay import pipeline, sample_data
    from sinks.declarations import load_specs

    sample_data.generate(warehouse, customers=200, seed=3)
    with duckdb.connect(str(warehouse)) as con:
        for schema, table in con.execute("select table_schema, table_name from information_schema.tables "
                                         "where table_schema in ('shopify', 'segment', 'salesforce')").fetchall():
            if (schema, table) not in {("shopify", "customer"), ("shopify", "order"), ("shopify", "order_line")}:
                con.execute(f'drop table {schema}."{table}"')
    run_dbt(warehouse, "build", "--exclude", "resource_type:unit_test")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from marts.customer_segments where winback_eligible").fetchone()[0] > 0
        absent = {row[0] for row in con.execute("select subject from marts.data_health where check_name = 'raw_table_absent'").fetchall()}
    assert absent == {"shopify.customer_tag", "shopify.order_discount_code", "shopify.discount_allocation", "shopify.refund",
                      "shopify.order_line_refund", "shopify.transaction", "shopify.abandoned_checkout",
                      "shopify.abandoned_checkout_discount_code", "shopify.shop", "shopify.product", "segment.tracks",
                      "segment.identifies",
                      "salesforce.contact"}
    for spec in load_specs(ROOT / "dbt_project" / "target" / "manifest.json"):
        result = pipeline.run_sync(spec, allow_large_change=True)
        assert result.status == "succeeded" and not result.rejected and not result.unsent, (spec.name, result.message)
        # Events: a store without checkouts or Segment has none in the first sync's backfill window to send.
        assert result.plan["counts"].get("add", 0) > 0 or spec.name.endswith("list_members") or spec.events, spec.name
    assert emulators["customerio"].state.to_json()["people"]

