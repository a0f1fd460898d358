"""Reading and writing a test's DuckDB warehouse: sync model tables and the ledger."""

from pathlib import Path

import duckdb


def write_table(warehouse: Path, relation: str, columns: dict[str, str], rows: list[dict]) -> None:
    """Replace `relation` (schema.table) with `rows`, each column cast to its declared type."""
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(f"create schema if not exists {relation.split('.')[0]}")
        select = ", ".join(f"cast(unnest(${c}) as {t}) as {c}" for c, t in columns.items())
        con.execute(f"create or replace table {relation} as select {select}", {c: [r[c] for r in rows] for c in columns})
    finally:
        con.close()


def query(warehouse: Path, sql: str, params=()) -> list[tuple]:
    """Rows of one statement, on a read-only connection closed before returning (the engine may write next)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def ledger_keys(warehouse: Path, table: str) -> list[str]:
    """The record keys of one ledger table (relay.sync_state, relay.sync_deliveries, ...), sorted."""
    return [k for (k,) in query(warehouse, f"select record_key from relay.{table} order by 1")]
