"""The fixtures every test file shares; the helpers behind them live in tests/support."""

import os
from pathlib import Path

import pytest

import vendor_schemas
from support.dbt import WORKER_DIR, point
from support.emulators import serve_emulators, served_env
from support.project import DBT_DIR


@pytest.fixture(scope="session", autouse=True)
def _worker_dir(tmp_path_factory) -> Path:
    """A directory of this pytest process (each xdist worker has its own) that outlives its tests. Set before
    any module's fixture builds: run_dbt reaches every warehouse through it (tests/support/dbt.py)."""
    directory = tmp_path_factory.mktemp("worker")
    os.environ[WORKER_DIR] = str(directory)
    return directory


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch, _worker_dir):
    """Every test gets its own warehouse and data dir; nothing touches the developer's data/.

    dbt's saved parse is valid only for the profile it was made with, and the warehouse's path is part of
    it. So the warehouse is named by one path for all of a worker's tests, a link to the current test's data
    directory, and dbt's artifacts (data/dbt) are the worker's: a test's dbt commands start from the parse the
    worker's previous ones left instead of parsing the whole project again."""
    data = tmp_path / "data"
    data.mkdir()
    shared_dbt = _worker_dir / "dbt"
    shared_dbt.mkdir(exist_ok=True)
    (data / "dbt").symlink_to(shared_dbt)
    current = _worker_dir / "data"
    point(current, data)
    monkeypatch.setenv("RELAY_DATA_DIR", str(data))
    monkeypatch.setenv("RELAY_WAREHOUSE", str(current / "warehouse.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("DBT_PROFILES_DIR", str(DBT_DIR))
    monkeypatch.setenv("RELAY_DESTINATIONS", "emulator")


@pytest.fixture
def warehouse():
    """The test's warehouse, by the worker's one path for it (see _isolated_environment)."""
    return Path(os.environ["RELAY_WAREHOUSE"])


@pytest.fixture
def emulators(monkeypatch):
    """All three emulators with the destinations pointed at them. At teardown every request they received is
    judged by the vendors' schemas (tests/vendor_schemas.py)."""
    with serve_emulators("--record-requests") as servers:
        for variable, value in served_env(servers).items():
            monkeypatch.setenv(variable, value)
        yield servers
    vendor_schemas.assert_judged(servers)
