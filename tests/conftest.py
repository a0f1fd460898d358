import contextlib
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import vendor_schemas

ROOT = Path(__file__).resolve().parents[1]
DBT_DIR = ROOT / "dbt_project"
DBT = str(Path(sys.executable).with_name("dbt"))


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch):
    """Every test gets its own warehouse and data dir; nothing touches the developer's data/."""
    monkeypatch.setenv("RELAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RELAY_WAREHOUSE", str(tmp_path / "data" / "warehouse.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("DBT_PROFILES_DIR", str(DBT_DIR))
    monkeypatch.setenv("RELAY_DESTINATIONS", "emulator")


def run_dbt(warehouse: Path, *args: str, vars: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """dbt against `warehouse`, with a private target/log dir so parallel tests never share artifacts."""
    work = warehouse.parent / "dbt"
    command = [DBT, *args, "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR),
               "--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    if vars:
        command += ["--vars", vars]
    env = {**os.environ, "RELAY_WAREHOUSE": str(warehouse)}
    result = subprocess.run(command, cwd=DBT_DIR, env=env, text=True, capture_output=True)
    if check and result.returncode != 0:
        raise AssertionError(f"dbt {' '.join(args)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}")
    return result


def create_contract_tables(warehouse: Path, skip_sources=(), drop_columns=(), extra_column=True) -> None:
    """Empty raw tables exactly as the contract declares them (plus an extra column loaders add)."""
    from relay import contract

    warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse))
    for table in contract.sources():
        if table["source"] in skip_sources:
            continue
        columns = [f'"{c["name"]}" {c["data_type"]}' for c in table["columns"]
                   if f'{table["source"]}.{table["table"]}.{c["name"]}' not in drop_columns]
        if extra_column:
            columns.append("_loader_extra varchar")
        con.execute(f'create schema if not exists {table["source"]}')
        con.execute(f'create or replace table {table["source"]}."{table["table"]}" ({", ".join(columns)})')
    con.close()


@pytest.fixture
def warehouse(tmp_path) -> Path:
    path = tmp_path / "data" / "warehouse.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def serve_emulators(*args: str):
    """All three emulators in this process on free loopback ports, rate limits off (`args`: more of
    `python -m emulators`'s options); yields {destination: server}."""
    from emulators import EmulatorServer, create_app
    from emulators.__main__ import configs_from_args

    limits = ("customerio", "customerio-app", "cordial", "talon-one", "talon-one-management")
    configs, _ = configs_from_args([*(f"--rate-limit-{name}=0" for name in limits), *args], {})
    servers = {}
    try:
        for name, config in zip(("customerio", "cordial", "talon_one"), configs):
            servers[name] = EmulatorServer(create_app(config)).start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def destination_env(servers: dict) -> dict[str, str]:
    """The variables that point the destinations at `servers`."""
    return {"CUSTOMERIO_TRACK_URL": servers["customerio"].url, "CUSTOMERIO_APP_URL": servers["customerio"].url,
            "CORDIAL_API_URL": servers["cordial"].url, "TALON_ONE_BASE_URL": servers["talon_one"].url,
            "CORDIAL_RATE_LIMIT_PER_MIN": "600000"}  # the emulator's limit is off too


@pytest.fixture
def emulators(monkeypatch):
    """All three emulators with the destinations pointed at them. At teardown every request they received is
    judged by the vendors' schemas (tests/vendor_schemas.py)."""
    with serve_emulators("--record-requests") as servers:
        for variable, value in destination_env(servers).items():
            monkeypatch.setenv(variable, value)
        yield servers
    vendor_schemas.assert_judged(servers)
