"""Alerts for runs that failed or left refused rows: a line in data/alerts/run_failures.jsonl, posted to
RELAY_ALERT_WEBHOOK_URL when set. The sensors call it for runs the daemon sees; `python -m orchestration run`
(`relay run`, `relay demo`) for its own runs, which no sensor sees."""

import json
import logging
import os
import re
from datetime import datetime, timezone

import dagster as dg
import httpx

from relay import config

log = logging.getLogger("relay.alerts")


def alert(run_id: str, job: str, outcome: str, error: str, steps: list[str], launched_by: str) -> dict:
    """Record (and post) one alert; `outcome`: failed, or partial (rows refused, see relay rejections)."""
    record = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "run_id": run_id, "job": job,
              "outcome": outcome, "error": error, "steps": steps, "launched_by": launched_by}
    path = config.data_dir() / "alerts" / "run_failures.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
    url = os.environ.get("RELAY_ALERT_WEBHOOK_URL")
    if url:
        try:
            httpx.post(url, json={"text": f"Relay run {run_id} ({job}) {outcome}: {error}", **record},
                       timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("could not post the alert: %s", type(exc).__name__)
    return record


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAX_ERROR_LINES = 16  # of one step's error, in an alert and in a quiet run's summary


def error_lines(message: str) -> list[str]:
    """A step's error without its stack trace, colour codes or blank lines (a dbt failure lists what failed)."""
    text = _ANSI.sub("", message).split("Stack Trace:")[0].removeprefix("dagster._core.definitions.events.Failure: ")
    return [line.strip() for line in text.splitlines() if line.strip()]


def step_errors(step_failures) -> str:
    """What the failed steps said, for an alert a person acts on without opening the UI."""
    parts = []
    for event in step_failures:
        error = event.event_specific_data.error
        lines = error_lines(error.message if error else event.message or "")[:MAX_ERROR_LINES]
        parts.append(f"{event.step_key}: " + "\n".join(lines))
    return "\n".join(parts)


def partial_syncs(events) -> list[str]:
    """The sync assets a run materialized with refused rows (their metadata status is partial)."""
    partial = []
    for event in events:
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            status = materialization.metadata.get("status")
            if status is not None and getattr(status, "value", status) == "partial":
                partial.append(materialization.asset_key.to_user_string())
    return partial
