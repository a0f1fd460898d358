"""Pipeline steps shared by the CLI, the demo and the Dagster assets: dbt, sync specs, syncs, summary."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from relay import config
from sinks import destinations
from sinks.declarations import SyncSpec, load_specs
from sinks.engine import RunResult, SyncRun, connect


def dbt_executable() -> str:
    # The venv's dbt, whether or not the venv is activated.
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(*args: str, check: bool = True, quiet: bool = False, project_dir: Path | None = None) -> subprocess.CompletedProcess:
    config.export_environment()
    project_dir = project_dir or config.DBT_PROJECT_DIR
    command = [dbt_executable(), *args, "--project-dir", str(project_dir), "--profiles-dir", str(config.DBT_PROJECT_DIR)]
    # The data directory's own target (a --target-path in args wins): its saved parse is for this warehouse.
    env = {**os.environ, "DBT_TARGET_PATH": str(config.dbt_target_dir() / "target")}
    result = subprocess.run(command, cwd=project_dir, text=True, capture_output=quiet, env=env)
    if check and result.returncode != 0:
        detail = (result.stdout or "")[-4000:] if quiet else ""
        raise RuntimeError(f"dbt {' '.join(args)} failed with exit code {result.returncode}\n{detail}")
    return result


def manifest_path(ensure: bool = True) -> Path:
    path = config.DBT_PROJECT_DIR / "target" / "manifest.json"
    if ensure and not path.exists():
        from relay import segments  # it parses, and registers the segment models

        segments.refresh_registry()
    return path


def prepare_manifest() -> Path:
    """Parse the dbt project and register its segment models (relay/segments.py): what a build, a run and
    the UI must start from after an analytics engineer added a model."""
    from relay import segments

    segments.refresh_registry()
    return manifest_path(ensure=False)


def sync_specs(names: list[str] | None = None, schedule: str | None = None) -> list[SyncSpec]:
    specs = load_specs(manifest_path())
    if names:
        known = {s.name: s for s in specs}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f"unknown sync(s): {', '.join(unknown)}. Known: {', '.join(known) or 'none'}")
        specs = [known[n] for n in names]
    if schedule:
        specs = [s for s in specs if s.schedule == schedule]
    # A destination's people first: its memberships and events follow them, and find what a merge moved.
    return sorted(specs, key=lambda s: s.object != "attributes")


def run_sync(spec: SyncSpec, *, apply: bool = True, full_resync: bool = False, allow_large_change: bool = False,
             progress: Callable[[int, int], None] | None = None, orchestrator_run_id: str | None = None) -> RunResult:
    config.export_environment()
    run = SyncRun(spec, destinations.build(spec.destination), config.warehouse_path(), apply=apply,
                  full_resync=full_resync, allow_large_change=allow_large_change, progress=progress,
                  orchestrator_run_id=orchestrator_run_id)
    return run.execute()


def refusals(run_id: str) -> list[dict]:
    """One run's refused rows by reason, with sample record keys (relay/rejections.py)."""
    from relay import rejections

    con = connect(config.warehouse_path())
    try:
        return rejections.by_reason(con, run_id=run_id)
    finally:
        con.close()


def last_runs(limit: int = 20) -> list[dict]:
    con = connect(config.warehouse_path(), read_only=True)
    try:
        cursor = con.execute(
            """
            select run_id, sync_name, destination, mode, status, started_at, finished_at, planned_add, planned_change,
                   planned_remove, acked_add, acked_change, acked_remove, rejected, unsent, requests, retries,
                   throttled, duration_s, rows_per_s, message
            from relay.sync_runs order by started_at desc limit ?
            """,
            [limit],
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    except Exception as exc:
        if "sync_runs" in str(exc):
            return []
        raise
    finally:
        con.close()


def warehouse_summary() -> dict:
    """Rows per layer, per segment and per destination, for the demo's closing summary."""
    con = connect(config.warehouse_path(), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('shopify','segment','salesforce','staging','intermediate','marts','syncs','relay') "
            "order by 1, 2"
        ).fetchall()
        layers: dict[str, dict[str, int]] = {}
        for schema, table in tables:
            count = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
            layers.setdefault(schema, {})[table] = count
        synced = dict(con.execute("select sync_name, count(*) from relay.sync_state group by 1 order by 1").fetchall()) \
            if "relay" in layers else {}
        return {"layers": layers, "synced": synced}
    finally:
        con.close()
