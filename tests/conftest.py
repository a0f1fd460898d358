"""The fixtures every test file shares; the helpers behind them live in tests/support."""

import pytest

import vendor_schemas
from support.emulators import serve_emulators, served_env
from support.project import DBT_DIR


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch):
    """Every test gets its own warehouse and data dir; nothing touches the developer's data/."""
    monkeypatch.setenv("RELAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RELAY_WAREHOUSE", str(tmp_path / "data" / "warehouse.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("DBT_PROFILES_DIR", str(DBT_DIR))
    monkeypatch.setenv("RELAY_DESTINATIONS", "emulator")


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "data" / "warehouse.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def emulators(monkeypatch):
    """All three emulators with the destinations pointed at them. At teardown every request they received is
    judged by the vendors' schemas (tests/vendor_schemas.py)."""
    with serve_emulators("--record-requests") as servers:
        for variable, value in served_env(servers).items():
            monkeypatch.setenv(variable, value)
        yield servers
    vendor_schemas.assert_judged(servers)
