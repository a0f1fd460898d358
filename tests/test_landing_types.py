"""Any landing types: every raw column may land as text (CSV loaders, Airbyte's and dlt's raw modes, manual
uploads), and staging reads it by the rules of its declared data_type (macros/cleaning.sql).

An all-VARCHAR copy of the sample builds sync models identical to the typed sample's; a value that cannot be
read (a boolean "yes please", a bigint id "12a", an amount "abc") fails the build naming the raw table, the
column, the row's key and the value, while the other spellings the rules accept stage as their typed value.

Kept cheap: small samples, `dbt run` of the sync models' ancestors only (no tests), and
the typed and the text warehouse built at one path in turn, so dbt parses the project once for both.
"""

import json

import duckdb
import pytest

from support.dbt import run_dbt
from relay import config, sample_data

pytestmark = pytest.mark.slow

RAW_SCHEMAS = ("shopify", "segment", "salesforce")
GATE = "assert_raw_timestamps_parse"


def copy_as_text(typed, text) -> None:
    """Every raw table of `typed` into `text`, every column cast to VARCHAR (what an all-text loader lands)."""
    with duckdb.connect(str(text)) as con:
        con.execute(f"attach '{typed}' as typed (read_only)")
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_catalog = 'typed' "
            f"and table_schema in {RAW_SCHEMAS}").fetchall()
        for schema, table in tables:
            columns = [c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_catalog = 'typed' "
                "and table_schema = ? and table_name = ? order by ordinal_position", [schema, table]).fetchall()]
            con.execute(f"create schema if not exists {schema}")
            con.execute(f'create table {schema}."{table}" as select '
                        + ", ".join(f'cast("{c}" as varchar) as "{c}"' for c in columns)
                        + f' from typed.{schema}."{table}"')
        con.execute("detach typed")
        assert con.execute("select count(*) from information_schema.columns where table_schema in "
                           f"{RAW_SCHEMAS} and data_type <> 'VARCHAR'").fetchone()[0] == 0


def test_text_landing_builds_the_same_syncs_as_typed(tmp_path):
    warehouse, typed, text = tmp_path / "warehouse.duckdb", tmp_path / "typed.duckdb", tmp_path / "text.duckdb"
    sample_data.generate(warehouse, 200)
    copy_as_text(warehouse, text)
    # One path for both builds (the profile reads it), so the second reuses the first's parse.
    run_dbt(warehouse, "run", "--select", "+path:models/syncs")
    warehouse.rename(typed)
    text.rename(warehouse)
    run_dbt(warehouse, "run", "--select", "+path:models/syncs")

    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute(f"attach '{typed}' as typed (read_only)")

        def syncs(catalog: str) -> dict[tuple[str, str], list]:
            found = con.execute("select table_schema, table_name from information_schema.tables "
                                "where table_catalog = ? and table_name like 'sync\\_%' escape '\\'", [catalog]).fetchall()
            return {(s, t): con.execute("select column_name, data_type from information_schema.columns where "
                                        "table_catalog = ? and table_schema = ? and table_name = ? order by ordinal_position",
                                        [catalog, s, t]).fetchall() for s, t in found}

        typed_syncs, text_syncs = syncs("typed"), syncs("warehouse")
        assert len(typed_syncs) >= 6 and typed_syncs == text_syncs  # the same models, columns and types
        for schema, table in typed_syncs:
            rows = con.execute(f'select count(*) from typed.{schema}."{table}"').fetchone()[0]
            differ = con.execute(f'select count(*) from ((from typed.{schema}."{table}" except all from {schema}."{table}") '
                                 f'union all (from {schema}."{table}" except all from typed.{schema}."{table}"))').fetchone()[0]
            assert rows > 0 and differ == 0, f"{schema}.{table}: {differ} of {rows} rows differ"


def test_unreadable_text_values_fail_the_build_naming_them(tmp_path):
    typed, warehouse = tmp_path / "typed.duckdb", tmp_path / "warehouse.duckdb"
    sample_data.generate(typed, 20)
    copy_as_text(typed, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        orders = [i for (i,) in con.execute('select id from shopify."order" where customer_id is not null '
                                            'order by cast(id as bigint) limit 6').fetchall()]
        customer_of_order = con.execute('select cast(customer_id as bigint) from shopify."order" where id = ?', [orders[5]]).fetchone()[0]
        line, line_order = con.execute("select id, order_id from shopify.order_line order by cast(id as bigint) limit 1").fetchone()
        customer = con.execute("select id from shopify.customer order by cast(id as bigint) limit 1").fetchone()[0]
        transaction = con.execute('select id from shopify."transaction" order by cast(id as bigint) limit 1').fetchone()[0]
        # Unreadable: a boolean, a bigint id (also one that is a key), an amount, a soft-delete flag.
        con.execute('update shopify."order" set test = ? where id = ?', ["yes please", orders[0]])
        con.execute("update shopify.order_line set product_id = '12a' where id = ?", [line])
        con.execute("update shopify.customer set id = '12.5' where id = ?", [customer])
        con.execute('update shopify."transaction" set amount = \'abc\' where id = ?', [transaction])
        con.execute('update shopify."order" set _fivetran_deleted = \'nope\' where id = ?', [orders[1]])
        # Readable: any case and padding, yes/no and 1/0, blank (null), an id written as a float.
        con.execute('update shopify."order" set test = ?, buyer_accepts_marketing = ? where id = ?', [" TRUE\t", "no", orders[2]])
        con.execute('update shopify."order" set test = ?, buyer_accepts_marketing = ? where id = ?', ["0", "Yes", orders[3]])
        con.execute('update shopify."order" set test = ?, buyer_accepts_marketing = ?, total_tax = ? where id = ?',
                    ["", " ", "", orders[4]])
        con.execute('update shopify."order" set customer_id = customer_id || \'.0\', total_price = \' 12.50 \' where id = ?',
                    [orders[5]])

    result = run_dbt(warehouse, "build", "--select", "path:models/staging,resource_type:model", GATE, "--indirect-selection", "empty",
                     check=False)
    assert result.returncode == 1
    section = result.stdout.split(f"Failure in test {GATE} ", 1)[1].split("\n\n\n", 1)[0]
    assert "Got 5 results, configured to fail" in section, section
    with duckdb.connect(str(warehouse), read_only=True) as con:
        failures = sorted(con.execute(f"select * from dbt_test__audit.{GATE}").fetchall())
        assert failures == sorted([
            ("shopify.order", "test", orders[0], "yes please"),
            ("shopify.order", "_fivetran_deleted", orders[1], "nope"),
            ("shopify.order_line", "product_id", line, "12a"),
            ("shopify.customer", "id", "12.5", "12.5"),
            ("shopify.transaction", "amount", transaction, "abc"),
        ])
        # Staging built (only the gate failed), the unreadable values null, the readable ones as typed.
        results = json.loads((tmp_path / "dbt" / "target" / "run_results.json").read_text())["results"]
        statuses = {r["unique_id"].split(".")[-1]: r["status"] for r in results if r["unique_id"].startswith(("model.", "test."))}
        staging_models = {path.stem for path in (config.DBT_PROJECT_DIR / "models" / "staging").rglob("*.sql")}
        assert statuses.pop(GATE) == "fail" and set(statuses) == staging_models, statuses
        assert set(statuses.values()) == {"success"}, statuses
        staged = {str(order_id): row for order_id, *row in con.execute(
            "select order_id, is_test_order, buyer_accepts_marketing, total_tax, customer_id, total_price "
            "from staging.stg_shopify__orders").fetchall()}
        assert staged[orders[0]][0] is False  # null, then staging's default
        assert staged[orders[2]][:2] == [True, False]
        assert staged[orders[3]][:2] == [False, True]
        assert staged[orders[4]][:3] == [False, None, 0]
        assert staged[orders[5]][3] == customer_of_order and float(staged[orders[5]][4]) == 12.5
        assert con.execute("select product_id from staging.stg_shopify__order_lines where order_line_id = ?",
                           [int(line)]).fetchone()[0] is None
        assert con.execute("select count(*) from staging.stg_shopify__order_lines where order_id = ?",
                           [int(line_order)]).fetchone()[0] >= 1
