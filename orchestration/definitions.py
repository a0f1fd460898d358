import dagster as dg

from orchestration.dbt import dbt_resource, raw_freshness, raw_source_specs, relay_dbt_models
from orchestration.preflight import preflight
from orchestration.publish import published_warehouse
from orchestration.reports import relay_dbt_reports
from orchestration.schedules import daily_job, daily_schedule, frequent_job, frequent_schedule
from orchestration.sensors import raw_data_sensor, run_failure_alert, run_partial_alert
from orchestration.syncs import SyncEngine, sync_assets

defs = dg.Definitions(
    assets=[*raw_source_specs(), preflight, relay_dbt_models, relay_dbt_reports, sync_assets, published_warehouse],
    asset_checks=[raw_freshness],
    jobs=[frequent_job, daily_job],
    schedules=[frequent_schedule, daily_schedule],
    sensors=[raw_data_sensor, run_failure_alert, run_partial_alert],
    resources={"dbt": dbt_resource(), "sync_engine": SyncEngine()},
    # DuckDB allows one writer per file: steps run one at a time in the run's process.
    executor=dg.in_process_executor,
)
