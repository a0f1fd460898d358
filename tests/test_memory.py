"""A sync's memory does not grow with its rows: the plan's payloads spill to disk past RELAY_SYNC_MEMORY_MB
instead of filling the process (make bench measures the shipped models at 1M and 3M rows). And a dbt build
whose step spills past RELAY_DBT_MEMORY_LIMIT goes on building.

A first sync of wide rows (about 4 KB of payload each, 160 MB in all), in a process of its own against the
Customer.io emulator over loopback, with the limit set low; the process's peak RSS (support/peak.py) is the judge."""

import json
import os

import duckdb
import pytest

from sinks import destinations
from sinks.declarations import SyncSpec
from sinks.engine import SyncRun
from support import peak
from support.dbt import create_contract_tables, run_dbt
from support.project import ROOT
from support.sync_process import sync_command
from support.warehouse import query

ROWS = 40_000
NOTES = [f"note_{i}" for i in range(16)]  # 16 attributes of about 250 characters each
SPEC = SyncSpec(name="sync_test__wide_people", relation="syncs.wide_people", destination="customerio",
                object="attributes", primary_key=("customer_key",), identifier="customer_key", on_exit="clear",
                schedule="daily", columns={"customer_key": "varchar", **{n: "varchar" for n in NOTES}})
# The limit, Python's own and the chunks in flight. Without the limit this sync peaks near twice as high
# (the plan holds every payload, and more while it is made).
MAX_PEAK_MB = 600


def write_wide_model(warehouse) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("create schema syncs")
        # Varied text (md5s), so neither DuckDB's compression nor a dictionary makes the rows small.
        notes = ", ".join(f"repeat(md5(i::varchar || '{n}'), 8) as {n}" for n in NOTES)
        con.execute(f"create table syncs.wide_people as select 'c' || i as customer_key, {notes} from range({ROWS}) t(i)")
    finally:
        con.close()


def test_a_wide_first_sync_stays_under_its_memory_limit(warehouse, emulators):
    write_wide_model(warehouse)
    env = {**os.environ, "RELAY_SYNC_MEMORY_MB": "256", "CUSTOMERIO_RATE_LIMIT": "1e9"}
    run = peak.run(sync_command(SPEC, warehouse), cwd=ROOT, env=env)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    result = json.loads(run.stdout.splitlines()[-1])
    assert (result["status"], result["acked_add"], result["rejected"]) == ("succeeded", ROWS, 0)
    assert run.peak_mb < MAX_PEAK_MB, f"peak RSS {run.peak_mb:.0f} MB for {ROWS} rows of 4 KB"
    # What spilled is gone once the run closed its connection.
    assert not any(warehouse.with_name(warehouse.name + ".tmp").glob("*"))


def test_a_limit_too_low_for_the_rows_fails_the_run_naming_the_setting(warehouse, monkeypatch):
    write_wide_model(warehouse)
    monkeypatch.setenv("RELAY_SYNC_MEMORY_MB", "128")
    with pytest.raises(MemoryError, match="RELAY_SYNC_MEMORY_MB \\(128 MB\\): raise it"):
        SyncRun(SPEC, destinations.build("customerio"), warehouse, apply=False).execute()
    assert query(warehouse, "select status, message like '%RELAY_SYNC_MEMORY_MB%' from relay.sync_runs") == [
        ("failed", True)]
    assert query(warehouse, "select count(*) from relay.sync_state") == [(0,)]


def test_a_dbt_build_goes_on_after_a_step_spilled(warehouse, monkeypatch):
    """A million Segment events deduplicated under a 200 MB limit: the staging model spills, and its tests, each
    in a cursor of its own, still run. (A temp directory set per cursor failed every node after a spill.)"""
    create_contract_tables(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("""insert into segment.tracks (id, anonymous_id, event, "timestamp", received_at)
            select md5(i::varchar) || md5((i * 7)::varchar), md5((i * 3)::varchar), 'Product Viewed',
                   timestamp '2026-10-01' + to_seconds(i), timestamp '2026-10-01' + to_seconds(i) from range(1000000) t(i)""")
    monkeypatch.setenv("RELAY_DBT_MEMORY_LIMIT", "200MB")
    built = run_dbt(warehouse, "build", "--select", "stg_segment__tracks", check=False)
    assert built.returncode == 0 and "ERROR=0" in built.stdout, built.stdout[-3000:]
    # The same step with spilling turned off runs out of memory: the build above did spill.
    monkeypatch.setenv("RELAY_DBT_TEMP_DIRECTORY", "")
    unspilled = run_dbt(warehouse, "run", "--select", "stg_segment__tracks", "--full-refresh", check=False)
    assert unspilled.returncode != 0 and "Out of Memory" in unspilled.stdout, unspilled.stdout[-3000:]
