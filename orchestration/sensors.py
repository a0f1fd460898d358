"""Sensors: start the frequent path when new raw data lands; record and announce failed runs."""

import json
import os
from datetime import datetime, timezone

import dagster as dg
import duckdb
import httpx

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
    record = {
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_id": context.dagster_run.run_id,
        "job": context.dagster_run.job_name,
        "error": context.failure_event.message,
        "steps": [e.step_key for e in context.get_step_failure_events()],
    }
    log = config.data_dir() / "alerts" / "run_failures.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(json.dumps(record) + "\n")
    url = os.environ.get("RELAY_ALERT_WEBHOOK_URL")
    if url:
        try:
            httpx.post(url, json={"text": f"Relay run {record['run_id']} ({record['job']}) failed: {record['error']}",
                                  **record}, timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            context.log.warning(f"could not post the failure alert: {type(exc).__name__}")
