"""Raw freshness, judged as `dbt source freshness` would, by the Dagster check every job runs: freshly
generated sample data is fresh (the sample shop's clock is its as-of plus the time since it landed, so the
models never read the wall clock); a table whose loader stopped, or a shop nobody appended to for days, is
not. Real sample data, the real check, executed by Dagster."""

from datetime import datetime, timedelta

import dagster as dg
import duckdb
import pytest

from orchestration.dbt import raw_freshness, raw_source_specs
from relay import sample_data

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def freshness(warehouse) -> dict[str, dg.AssetCheckEvaluation]:
    """Each raw table's freshness check, run now: {table: evaluation}."""
    job = dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(raw_freshness))
    defs = dg.Definitions(assets=raw_source_specs(), asset_checks=[raw_freshness], jobs=[job])
    result = defs.resolve_job_def("freshness").execute_in_process(raise_on_error=False, run_config=QUIET)
    return {e.event_specific_data.asset_key.to_user_string(): e.event_specific_data for e in result.all_events
            if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION}


@pytest.fixture
def shop(warehouse):
    sample_data.generate(warehouse, customers=1000, seed=7)
    return warehouse


def test_freshly_generated_sample_data_is_fresh(shop):
    checks = freshness(shop)
    assert len(checks) == 16 and {table for table, check in checks.items() if not check.passed} == set()
    assert checks["shopify/order"].metadata["clock"].value.startswith("sample data: as of 2026-11-01 00:00:00")


def test_a_table_whose_loader_stopped_fails_its_check_and_only_its(shop):
    with duckdb.connect(str(shop)) as con:  # orders stopped landing two days before the rest
        con.execute("delete from shopify.\"order\" where _fivetran_synced > timestamp '2026-10-30 00:00:00'")
    checks = freshness(shop)
    assert {table for table, check in checks.items() if not check.passed} == {"shopify/order"}
    late = checks["shopify/order"]
    assert late.severity == dg.AssetCheckSeverity.ERROR and late.metadata["lag_hours"].value > 48


def test_a_shop_nobody_appended_to_for_two_days_is_late_everywhere_it_is_busy(shop):
    with duckdb.connect(str(shop)) as con:
        con.execute("update _relay_sample.params set landed_at = landed_at - interval 2 days")
    checks = freshness(shop)
    # The busy tables (error after 24 h) fail; a table judged over days, or not at all (the catalog), does not.
    assert {"shopify/order", "shopify/customer", "segment/tracks"} <= {t for t, c in checks.items() if not c.passed}
    assert checks["shopify/product"].passed and checks["salesforce/contact"].severity == dg.AssetCheckSeverity.WARN
    # An appended day lands now: what it writes is fresh again (it writes no CRM contacts: that check warns).
    sample_data.append(shop, hours=24)
    assert {table for table, check in freshness(shop).items() if not check.passed} == {"salesforce/contact"}


def test_a_real_warehouse_is_judged_by_the_wall_clock(shop):
    with duckdb.connect(str(shop)) as con:
        con.execute("drop schema _relay_sample cascade")
    checks = freshness(shop)
    # The sample shop ends 2026-11-01: against today's date every busy table is late.
    order = checks["shopify/order"]
    assert not order.passed and order.metadata["clock"].value == "wall clock (UTC)"
    assert timedelta(hours=order.metadata["lag_hours"].value) > datetime.utcnow() - sample_data.DEFAULT_AS_OF
