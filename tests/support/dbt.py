"""dbt against a test's own warehouse, and the raw tables the contract declares."""

import os
import subprocess
from pathlib import Path

import duckdb

from .project import DBT, DBT_DIR


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
