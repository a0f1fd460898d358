"""Paths and environment shared by the CLI, dbt, Dagster and the sync engine.

Everything that touches the warehouse resolves it here, once, to an absolute path exported as
RELAY_WAREHOUSE: dbt's profiles.yml reads that variable, so a relative path can never silently
create a second, empty warehouse next to whatever the current directory happens to be.
"""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The shipped dbt project, unless RELAY_DBT_PROJECT_DIR names another copy of it (a fork, or a test's patched one).
DBT_PROJECT_DIR = Path(os.environ.get("RELAY_DBT_PROJECT_DIR") or PROJECT_ROOT / "dbt_project").resolve()


def data_dir() -> Path:
    return Path(os.environ.get("RELAY_DATA_DIR", PROJECT_ROOT / "data")).resolve()


def warehouse_path() -> Path:
    return Path(os.environ.get("RELAY_WAREHOUSE", data_dir() / "warehouse.duckdb")).resolve()


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME", PROJECT_ROOT / ".dagster")).resolve()


def export_environment() -> None:
    """Make every child process (dbt, dagster) see the same absolute paths."""
    wh = warehouse_path()
    wh.parent.mkdir(parents=True, exist_ok=True)
    os.environ["RELAY_WAREHOUSE"] = str(wh)
    os.environ.setdefault("DBT_PROFILES_DIR", str(DBT_PROJECT_DIR))
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    # DAGSTER_HOME must contain dagster.yaml; the project's single copy lives at the top level.
    link = home / "dagster.yaml"
    if not link.exists():
        link.symlink_to(PROJECT_ROOT / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
