"""The ledger: Relay's own tables in the warehouse (schema `relay`), how a connection brings them up to
date, and each run's row in relay.sync_runs.

  relay.sync_state        one row per (sync, key) the destination holds: identifier, hash, payload sent
  relay.sync_runs         one row per plan/apply run with counts, requests, retries, rows/s
  relay.sync_rejections   rows a destination refused (or that could not be sent), with the reason
  relay.sync_deliveries   what each destination was told and when (key, kind, fields)
  relay.destination_objects  ids of lists/audiences/segments created at destinations
  relay.sync_unconfirmed  (sync, key, identifier) a write of unknown fate may still reach, until when
  relay.sync_skipped      events an events sync will never send (too old when first seen, before its
                          backfill window, no consent, of unknown fate), and why
  relay.sync_merges       how each identity merge reached a destination (merged, retired, exited, adopted),
                          written with the acknowledgement that carried it (sinks/engine/merges.py)
  relay.sync_in_flight    events journaled (sent_at) just before a request to a destination that does not
                          deduplicate them; unknown_at: when its answer was lost. One neither acknowledged nor
                          refused is of unknown fate (sinks/engine/events.py settles it)
"""

import json
import os
import threading
import time
from datetime import datetime, timezone

import duckdb

from relay import config
from sinks.engine.result import RunResult

STATE_COLUMNS = """(
    sync_name varchar not null,
    record_key varchar not null,
    identifier varchar,
    row_hash varchar not null,
    payload json,
    first_synced_at timestamp,
    last_synced_at timestamp,
    last_run_id varchar
)"""
DDL = """
create schema if not exists relay;
create table if not exists relay.sync_state """ + STATE_COLUMNS + """;
create table if not exists relay.sync_runs (
    run_id varchar primary key,
    sync_name varchar,
    destination varchar,
    mode varchar,
    status varchar,
    full_resync boolean,
    started_at timestamp,
    finished_at timestamp,
    model_rows bigint,
    state_rows bigint,
    planned_add bigint,
    planned_change bigint,
    planned_remove bigint,
    acked_add bigint,
    acked_change bigint,
    acked_remove bigint,
    rejected bigint,
    unsent bigint,
    requests bigint,
    retries bigint,
    throttled bigint,
    duration_s double,
    rows_per_s double,
    message varchar,
    plan json
);
alter table relay.sync_runs add column if not exists resent bigint;
alter table relay.sync_runs add column if not exists unconfirmed bigint;
alter table relay.sync_runs add column if not exists skipped bigint;
alter table relay.sync_runs add column if not exists planned_merge bigint;
alter table relay.sync_runs add column if not exists acked_merge bigint;
alter table relay.sync_runs add column if not exists orchestrator_run_id varchar;
create table if not exists relay.sync_merges (
    sync_name varchar not null,
    destination varchar,
    retired_key varchar not null,
    surviving_key varchar,
    retired_identifier varchar,
    surviving_identifier varchar,
    outcome varchar,
    note varchar,
    run_id varchar,
    recorded_at timestamp
);
create table if not exists relay.sync_in_flight (
    sync_name varchar not null,
    record_key varchar not null,
    run_id varchar,
    sent_at timestamp
);
alter table relay.sync_in_flight add column if not exists unknown_at timestamp;
create table if not exists relay.sync_skipped (
    sync_name varchar not null,
    record_key varchar not null,
    identifier varchar,
    event_name varchar,
    occurred_at timestamp,
    reason varchar,
    run_id varchar,
    skipped_at timestamp
);
create table if not exists relay.sync_unconfirmed (
    sync_name varchar not null,
    record_key varchar not null,
    identifier varchar not null,
    payload json,
    resend_after timestamp,
    primary key (sync_name, record_key, identifier)
);
create table if not exists relay.sync_rejections (
    run_id varchar,
    sync_name varchar,
    record_key varchar,
    identifier varchar,
    kind varchar,
    status_code integer,
    reason varchar,
    rejected_at timestamp
);
create table if not exists relay.sync_deliveries (
    run_id varchar,
    sync_name varchar,
    record_key varchar,
    identifier varchar,
    kind varchar,
    fields varchar[],
    acked_at timestamp
);
create table if not exists relay.destination_objects (
    destination varchar,
    account varchar,
    kind varchar,
    name varchar,
    external_id varchar,
    created_at timestamp,
    primary key (destination, account, kind, name)
);
"""
KEEP_WAL_BYTES = 64 * 2**20  # see close
# Syncs of several destinations run side by side in one process: one at a time brings the ledger up to date
# (concurrent DDL would conflict in the catalog).
_UPGRADE = threading.Lock()


def connect(warehouse: str | os.PathLike, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(warehouse), read_only=read_only)
    # A plan holds every payload of the run, and DuckDB's default limit is most of the machine's memory: with a
    # limit, what does not fit spills to the warehouse's temp directory (<warehouse>.tmp), so a sync's memory
    # stays flat in its rows. The setting is the database's: connections of this process open at the same time
    # share it (a job's destinations sync side by side under one limit). 0 leaves DuckDB's own default.
    if limit := int(config.number("RELAY_SYNC_MEMORY_MB")):
        con.execute(f"set memory_limit = '{limit}MB'")
    if not read_only:
        with _UPGRADE:
            try:  # the ledger's newest parts exist: the DDL has nothing to do
                con.execute("select resent, unconfirmed, skipped, acked_merge, orchestrator_run_id from relay.sync_runs limit 0; "
                            "select resend_after from relay.sync_unconfirmed limit 0; select reason from relay.sync_skipped limit 0; "
                            "select unknown_at from relay.sync_in_flight limit 0; select note from relay.sync_merges limit 0")
            except duckdb.Error:
                con.execute(DDL)
            if con.execute("select count(*) from duckdb_constraints() where database_name = current_database() and "
                           "schema_name = 'relay' and table_name = 'sync_state' and constraint_type = 'PRIMARY KEY'"
                           ).fetchone()[0]:
                # A ledger from before sync_state lost its key index (see state.write): the same rows, without it.
                con.execute(f"begin; create table relay.sync_state_unindexed {STATE_COLUMNS}; "
                            "insert into relay.sync_state_unindexed select * from relay.sync_state order by sync_name, "
                            "record_key; drop table relay.sync_state; "
                            "alter table relay.sync_state_unindexed rename to sync_state; commit")
        # DuckDB checkpoints in the commit that takes the WAL past 16 MB: a large first sync made dozens of them,
        # each holding up its warehouse thread (and the next chunks) mid-delivery. A run's WAL is folded in when
        # it closes instead (see close); the WAL stays bounded.
        con.execute("set checkpoint_threshold = '1GB'")
    return con


def close(con: duckdb.DuckDBPyConnection, warehouse: str | os.PathLike) -> None:
    """Closing checkpoints: it rewrites every row group of the ledger the run touched, which is slow at
    millions of state rows, on the way to the next sync. A small WAL is left to the next
    checkpoint instead (each job's stakeholder publish makes one); opening the warehouse replays it quickly."""
    wal = f"{warehouse}.wal"
    if os.path.exists(wal) and os.path.getsize(wal) < KEEP_WAL_BYTES:
        con.execute("pragma disable_checkpoint_on_shutdown")
    con.close()


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def insert_run(con: duckdb.DuckDBPyConnection, r: RunResult) -> None:
    # Runs left 'running' by a killed process are marked so operators see them.
    con.execute(
        "update relay.sync_runs set status = 'abandoned', message = 'process ended before the run finished' "
        "where sync_name = ? and status = 'running'",
        [r.sync_name],
    )
    con.execute(
        "insert into relay.sync_runs (run_id, sync_name, destination, mode, status, full_resync, started_at, "
        "orchestrator_run_id) values (?, ?, ?, ?, 'running', ?, ?, ?)",
        [r.run_id, r.sync_name, r.destination, r.mode, r.full_resync, now(), r.orchestrator_run_id],
    )


RUN_COLUMNS = [
    "status", "model_rows", "state_rows", "planned_add", "planned_change", "planned_remove", "planned_merge",
    "acked_add", "acked_change", "acked_remove", "acked_merge", "rejected", "unsent", "requests", "retries",
    "throttled", "resent", "unconfirmed", "skipped", "duration_s", "rows_per_s", "message",
]


def update_run(con: duckdb.DuckDBPyConnection, r: RunResult, started: float) -> None:
    r.duration_s = round(time.monotonic() - started, 3)
    r.rows_per_s = round(r.acked / r.duration_s, 1) if r.duration_s and r.acked else 0.0
    con.execute(
        f"update relay.sync_runs set {', '.join(f'{c} = ?' for c in RUN_COLUMNS)}, plan = ?, finished_at = ? "
        "where run_id = ?",
        [getattr(r, c) for c in RUN_COLUMNS] + [json.dumps(r.plan, default=str), now(), r.run_id],
    )
