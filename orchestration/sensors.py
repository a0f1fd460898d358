"""Sensors: start the frequent path when new raw data lands; record and announce failed runs."""

import dagster as dg
import duckdb

from orchestration.alerts import alert, partial_syncs, step_errors
from orchestration.dbt import raw_relation
from orchestration.schedules import frequent_job
from relay import config

# The raw tables whose new rows the time-critical path must react to (purchases end eligibility).
WATERMARK_TABLES = ("order", "abandoned_checkout", "customer")
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def raw_watermark() -> str | None:
    """Newest loader write time across WATERMARK_TABLES."""
    union = " union all ".join(f"select max(_fivetran_synced) as synced from {raw_relation('shopify', t)}"
                               for t in WATERMARK_TABLES)
    with duckdb.connect(str(config.warehouse_path()), read_only=True) as con:
        value = con.execute(f"select max(synced) from ({union})").fetchone()[0]
    return None if value is None else str(value)


@dg.sensor(job=frequent_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Starts the frequent path when raw data with a newer _fivetran_synced lands.")
def raw_data_sensor(context: dg.SensorEvaluationContext):
    # Even a read-only DuckDB connection blocks dbt: look only while no run can be using the file.
    if context.instance.get_runs_count(dg.RunsFilter(statuses=ACTIVE)):
        return dg.SkipReason("a run is active; checking raw data after it")
    if not config.warehouse_path().exists():
        return dg.SkipReason(f"no warehouse at {config.warehouse_path()}")
    try:
        watermark = raw_watermark()
    except duckdb.Error as exc:
        return dg.SkipReason(f"warehouse not readable now ({type(exc).__name__}); retrying next tick")
    if watermark is None or watermark == context.cursor:
        return dg.SkipReason("no new raw data")
    context.update_cursor(watermark)
    return dg.RunRequest(run_key=f"raw-{watermark}", tags={"relay/trigger": "raw_data", "relay/watermark": watermark})


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Records every failed run and posts it to RELAY_ALERT_WEBHOOK_URL when set.")
def run_failure_alert(context: dg.RunFailureSensorContext):
    alert(context.dagster_run.run_id, context.dagster_run.job_name, "failed",
          step_errors(context.get_step_failure_events()) or context.failure_event.message or "",
          [e.step_key for e in context.get_step_failure_events()], launched_by="schedule, sensor or UI")


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, default_status=dg.DefaultSensorStatus.RUNNING,
                      description="Records every run whose syncs left refused rows, like a failed run.")
def run_partial_alert(context: dg.RunStatusSensorContext):
    records = context.instance.get_records_for_run(context.dagster_run.run_id,
                                                   of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    partial = partial_syncs([r.event_log_entry.dagster_event for r in records])
    if partial:
        alert(context.dagster_run.run_id, context.dagster_run.job_name, "partial",
              "rows refused by the destination: see relay rejections", partial, launched_by="schedule, sensor or UI")
