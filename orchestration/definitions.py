import dagster as dg

from orchestration.dbt import dbt_resource, relay_dbt_models
from orchestration.schedules import daily_job, daily_schedule, frequent_job, frequent_schedule
from orchestration.syncs import SyncEngine, sync_assets

defs = dg.Definitions(
    assets=[relay_dbt_models, *sync_assets],
    jobs=[frequent_job, daily_job],
    schedules=[frequent_schedule, daily_schedule],
    resources={"dbt": dbt_resource(), "sync_engine": SyncEngine()},
    # DuckDB allows one writer per file: steps run one at a time in the run's process.
    executor=dg.in_process_executor,
)
