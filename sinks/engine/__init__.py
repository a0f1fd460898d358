"""The sync engine: diff a sync model against what its destination acknowledged, plan, and deliver
only the changes, advancing state strictly after acknowledgement.

State lives in the warehouse (schema `relay`), so it is queryable and survives any crash:
  relay.sync_state        one row per (sync, key) the destination holds: identifier, hash, payload sent
  relay.sync_runs         one row per plan/apply run with counts, requests, retries, rows/s
  relay.sync_rejections   rows a destination refused (or that could not be sent), with the reason
  relay.sync_deliveries   what each destination was told and when (key, kind, fields)
  relay.destination_objects  ids of lists/audiences/segments created at destinations
  relay.sync_unconfirmed  (sync, key, identifier) a write of unknown fate may still reach, until when

A crash between a destination's acknowledgement and the state write only means the next run resends
those rows (every write the engine makes is idempotent at the destination); state never claims more
than was delivered.

A write whose request timed out (or lost its connection, or met a gateway error) may still be applied by
the server after our retry, or after a later run's newer write, and undo it. Its records are marked
unconfirmed; the first run after RELAY_RESEND_UNCONFIRMED_S (longer than any server keeps a request)
re-asserts them: the model's row in full, or the removal, at every identifier marked.

Throughput: adds that no other step of the run addresses (most of a first sync) have their request
entries built in the warehouse (Destination.bulk) and are acknowledged by row number; Python handles
their values only when an answer blames some. During delivery, reading chunks and writing state run on
a thread of their own, so the warehouse works while requests are in flight.
"""

import asyncio
import bisect
import collections
import concurrent.futures
import contextlib
import hashlib
import itertools
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

import duckdb

from sinks.declarations import SCOPE_KEY, SCOPE_LOG, SyncSpec
from sinks.destinations.base import (
    Batch, Bulk, Change, Destination, DestinationAuthError, ObjectRegistry, SetupError, SplitBatch,
)
from sinks.http import REDACT, RetriesExhausted, excerpt, watch_ambiguity

log = logging.getLogger("relay.sync")

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
LEDGER_DDL = """
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

@dataclass(frozen=True)
class Tuning:
    """How delivery trades memory, write frequency and warehouse threads (tests shrink these)."""

    chunk_rows: int = 5000  # steps read from _changes at a time
    # Acknowledged rows reach the state at least this often. Each flush is a transaction (and a WAL sync);
    # after a crash, at most this much acknowledged work is sent again (idempotent at every destination).
    # Small flushes keep what is left to write after the last answer small.
    flush_every_s: float = 2.0
    flush_every_rows: int = 5000
    # Chunks read ahead on the warehouse thread, so a state write queued there does not hold up sending.
    read_ahead_chunks: int = 3
    # DuckDB threads while requests are in flight. The warehouse thread's statements then are small (a chunk,
    # a flush), and its worker threads would only compete for the cores the event loop needs (and, against a
    # local emulator, the destination): one thread does that work in less CPU time, and sooner.
    delivery_threads: int = 1


SAMPLES_PER_KIND = 3
KEEP_WAL_BYTES = 64 * 2**20  # see SyncRun._close
# Acknowledged steps (_changes.rn), sent as runs of consecutive ones ($firsts[i]..$lasts[i], see _runs): most
# acknowledgements are whole requests of consecutive steps, so a few numbers cross instead of every one.
ACKED_STEPS = "(select unnest(range(f, l + 1)) as rn from (select unnest($firsts) as f, unnest($lasts) as l))"
# The acknowledged steps (within $lo..$hi) of one kind, as state rows.
STATE_INSERT = """
    insert into relay.sync_state by name
    select $sync as sync_name, c.record_key, c.identifier, c.row_hash, c.payload,
           $now as first_synced_at, $now as last_synced_at, $run as last_run_id
    from _changes c semi join """ + ACKED_STEPS + """ acked using (rn)
    where c.rn between $lo and $hi and not c.leaving and c.kind = '{kind}'
"""
# The acknowledged changes (within $lo..$hi) with when their records were first synced: their state rows are
# replaced by these.
ACKED_CHANGES = """
    create or replace temp table _acked_changes as
    select c.record_key, c.identifier, c.row_hash, c.payload, s.first_synced_at
    from _changes c semi join """ + ACKED_STEPS + """ acked using (rn)
    left join relay.sync_state s on s.sync_name = $sync and s.record_key = c.record_key
    where c.rn between $lo and $hi and not c.leaving and c.kind = 'change'
"""


def resend_unconfirmed_s() -> float:
    # Longer than a destination's servers hold a request (the emulators stall at most 35 s).
    return float(os.environ.get("RELAY_RESEND_UNCONFIRMED_S", "300"))


class SyncRefused(Exception):
    """The plan is abnormal (blast radius) or the model is unusable (duplicate keys); nothing was sent."""


@dataclass
class RunResult:
    run_id: str
    sync_name: str
    destination: str
    mode: str
    status: str = "running"
    full_resync: bool = False
    model_rows: int = 0
    state_rows: int = 0
    planned_add: int = 0
    planned_change: int = 0
    planned_remove: int = 0
    acked_add: int = 0
    acked_change: int = 0
    acked_remove: int = 0
    rejected: int = 0
    unsent: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    resent: int = 0  # rows re-asserted because a write of unknown fate may have undone them
    unconfirmed: int = 0  # rows this run wrote with a request of unknown fate: re-asserted later
    duration_s: float = 0.0
    rows_per_s: float = 0.0
    message: str = ""
    plan: dict = field(default_factory=dict)

    @property
    def planned(self) -> int:
        return self.planned_add + self.planned_change + self.planned_remove

    @property
    def acked(self) -> int:
        return self.acked_add + self.acked_change + self.acked_remove

    @property
    def unacknowledged(self) -> int:
        """Planned rows neither acknowledged nor refused: resent next run."""
        return max(0, self.planned - self.acked - self.rejected)

    def as_dict(self) -> dict:
        return asdict(self)


def connect(warehouse: str | os.PathLike, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(warehouse), read_only=read_only)
    if not read_only:
        try:  # the ledger's newest parts exist: the DDL (tens of milliseconds) has nothing to do
            con.execute("select resent, unconfirmed from relay.sync_runs limit 0; "
                        "select resend_after from relay.sync_unconfirmed limit 0")
        except duckdb.Error:
            con.execute(LEDGER_DDL)
        if con.execute("select count(*) from duckdb_constraints() where database_name = current_database() and "
                       "schema_name = 'relay' and table_name = 'sync_state' and constraint_type = 'PRIMARY KEY'"
                       ).fetchone()[0]:
            # A ledger from before sync_state lost its key index (see _write): the same rows, without it.
            con.execute(f"begin; create table relay.sync_state_unindexed {STATE_COLUMNS}; "
                        "insert into relay.sync_state_unindexed select * from relay.sync_state order by sync_name, "
                        "record_key; drop table relay.sync_state; "
                        "alter table relay.sync_state_unindexed rename to sync_state; commit")
        # DuckDB checkpoints in the commit that takes the WAL past 16 MB: a 1M-row first sync made ~60 of them,
        # each holding up its warehouse thread (and the next chunks) mid-delivery. A run's WAL (~330 MB for a
        # 1M-row first sync) is folded in when it closes instead (see _close); the WAL stays bounded.
        con.execute("set checkpoint_threshold = '1GB'")
    return con


_RUNNING: set[tuple[str, str]] = set()
_RUNNING_LOCK = threading.Lock()


@contextlib.contextmanager
def _claim(warehouse: str | os.PathLike, name: str):
    """One run of a sync at a time in this process (no other process can open the warehouse for writing
    meanwhile), so only that run writes the sync's state and its keys stay unique (see _write)."""
    key = (os.path.realpath(warehouse), name)
    with _RUNNING_LOCK:
        if key in _RUNNING:
            raise SyncRefused(f"sync {name} is already running in this process; runs of one sync never overlap")
        _RUNNING.add(key)
    try:
        yield
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(key)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _key_sql(spec: SyncSpec, alias: str = "m") -> str:
    # Keys are text; compound keys are a JSON array so parts containing separators stay unambiguous.
    if len(spec.primary_key) == 1:
        return f"cast({alias}.{_quote(spec.primary_key[0])} as varchar)"
    parts = ", ".join(f"cast({alias}.{_quote(c)} as varchar)" for c in spec.primary_key)
    return f"cast(to_json([{parts}]) as varchar)"


def _payload_sql(spec: SyncSpec, alias: str = "m") -> str:
    fields = ", ".join(f"{_quote(c)} := {alias}.{_quote(c)}" for c in spec.columns)
    # Typed JSON, so the state takes it as it is (a cast from varchar would parse every payload again).
    return f"to_json(struct_pack({fields}))"


class SyncRun:
    """One plan or apply of one sync. Use `execute()`; the warehouse connection is held only while it runs."""

    def __init__(
        self,
        spec: SyncSpec,
        destination: Destination,
        warehouse: str | os.PathLike,
        *,
        apply: bool = True,
        full_resync: bool = False,
        allow_large_change: bool = False,
        max_change_share: float | None = None,
        min_guarded_rows: int | None = None,
        concurrency: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        tuning: Tuning = Tuning(),
        on_ack: Callable[[], None] | None = None,
    ) -> None:
        self.tuning = tuning
        self.on_ack = on_ack  # called after each acknowledged batch, before its state write (crash tests)
        self.spec = spec
        self.destination = destination
        self.warehouse = warehouse
        self.apply = apply
        self.full_resync = full_resync
        self.allow_large_change = allow_large_change
        self.max_change_share = (
            spec.max_change_share or max_change_share or float(os.environ.get("RELAY_MAX_CHANGE_SHARE", "0.3"))
        )
        self.min_guarded_rows = min_guarded_rows if min_guarded_rows is not None else int(
            os.environ.get("RELAY_BLAST_RADIUS_MIN_ROWS", "100")
        )
        self.concurrency = concurrency or destination.concurrency
        self.progress = progress
        self.result = RunResult(
            run_id=f"{_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
            sync_name=spec.name,
            destination=spec.destination,
            mode="apply" if apply else "plan",
            full_resync=full_resync,
        )
        # Acknowledged steps (_changes.rn) not yet in the state: adds and changes, removes, and the fields
        # each change sent (only row numbers: the rest is in _changes).
        self._upserts: list[int] = []
        self._removes: list[int] = []
        self._fields: list[tuple[int, list[str]]] = []
        self._rejections: list[tuple[Change, int | None, str]] = []
        self._unconfirmed: list[int] = []  # steps sent with a request of unknown fate
        self._resend: set[str] = set()  # keys re-asserted in full this run
        self._clean = True  # every step was acknowledged: the marks this run re-asserted can go
        self._build: str | None = None  # the latest dbt build logged when this run planned
        self._last_flush = time.monotonic()
        self._done_rows = 0
        self._db: concurrent.futures.ThreadPoolExecutor | None = None  # the warehouse thread, during delivery
        self._flushing: asyncio.Future | None = None  # the state write in progress there

    # ---------------------------------------------------------------- orchestration
    def execute(self) -> RunResult:
        with _claim(self.warehouse, self.spec.name):
            return self._execute()

    def _execute(self) -> RunResult:
        started = time.monotonic()
        self.con = connect(self.warehouse)
        try:
            self._insert_run()
            self._check_model()
            if self.apply:
                asyncio.run(self._apply())
                # The last acknowledgements, the run's outcome and its row commit together (one WAL sync).
                self._write(self._take(), then=lambda: self._finish(started))
            else:
                self._plan()
                self._update_run(started)
        except SyncRefused as exc:
            self.result.status = "refused"
            self.result.message = str(exc)
            self._update_run(started)
        except DestinationAuthError as exc:
            self._failed(REDACT(exc), started)
        except Exception as exc:  # recorded, then re-raised: the run row must say how it ended
            self._failed(REDACT(f"{type(exc).__name__}: {exc}"), started)
            self._close()
            raise
        self._close()
        return self.result

    def _failed(self, message: str, started: float) -> None:
        """A run that could not finish: what was acknowledged is kept, the rest counts as unsent."""
        self._flush()
        r = self.result
        r.status, r.message = "failed", message
        r.unsent = r.unacknowledged if self.apply else 0
        self._update_run(started)

    def _close(self) -> None:
        # Closing checkpoints: it rewrites every row group of the ledger this run touched (seconds for a few
        # thousand changes among a million state rows), on the way to the next sync. A small WAL is left to
        # the next checkpoint instead (each job's stakeholder publish makes one); opening the warehouse
        # replays it in milliseconds.
        wal = f"{self.warehouse}.wal"
        if os.path.exists(wal) and os.path.getsize(wal) < KEEP_WAL_BYTES:
            self.con.execute("pragma disable_checkpoint_on_shutdown")
        self.con.close()

    def _finish(self, started: float) -> None:
        self._finish_status()
        if self._clean and self.result.status == "succeeded":  # every re-assertion landed
            self.con.execute("delete from relay.sync_unconfirmed where sync_name = ? and resend_after <= ?",
                             [self.spec.name, self._planned_at])
        self._update_run(started)

    def _finish_status(self) -> None:
        r = self.result
        r.unsent = r.unacknowledged
        if r.unsent and not r.message:
            r.message = f"{r.unsent} rows were not acknowledged and will be resent next run"
        # Rows the destination refused are data problems, recorded and retried: the run itself worked.
        # It failed only when rows went unacknowledged and nothing got through.
        r.status = "succeeded" if not (r.rejected or r.unsent) else ("failed" if r.unsent and not r.acked else "partial")
        if r.rejected and not r.message:
            r.message = f"{r.rejected} rows refused by {self.spec.destination}; see relay.sync_rejections"
        if r.unconfirmed and not r.message:
            r.message = (f"{r.unconfirmed} rows were sent in requests of unknown fate (timeouts, lost connections); "
                         f"they are re-sent by the first run after {resend_unconfirmed_s():.0f} s")

    # ---------------------------------------------------------------- plan
    def _check_model(self) -> None:
        """Refuse a model that cannot be synced (missing, duplicate keys) before anything else happens."""
        spec, con, r = self.spec, self.con, self.result
        try:
            r.model_rows = con.execute(f"select count(*) from {spec.relation}").fetchone()[0]
        except duckdb.CatalogException as exc:
            raise SyncRefused(f"sync model {spec.relation} does not exist in the warehouse: run dbt build first") from exc
        duplicates = con.execute(
            f"select {_key_sql(spec)} as k, count(*) from {spec.relation} m group by 1 having count(*) > 1 order by 2 desc, 1 limit 5"
        ).fetchall()
        if duplicates:
            shown = ", ".join(f"{k} (x{n})" for k, n in duplicates)
            raise SyncRefused(
                f"sync model {spec.relation} has duplicate primary keys ({', '.join(spec.primary_key)}): {shown}. "
                "Refusing to pick one; fix the model."
            )

    def _plan(self) -> None:
        spec, con, r = self.spec, self.con, self.result
        r.state_rows = con.execute(
            "select count(*) from relay.sync_state where sync_name = ?", [spec.name]
        ).fetchone()[0]
        changed = "true" if self.full_resync else "m.row_hash is distinct from s.row_hash"
        # Records a write of unknown fate may have undone (see the module docstring), once it can no longer land.
        self._planned_at = _now()
        marked = con.execute(
            "select count(*) from relay.sync_unconfirmed where sync_name = $sync and resend_after <= $now",
            {"sync": spec.name, "now": self._planned_at}).fetchone()[0]
        forced = ("(m.record_key in (select record_key from marks) or m.identifier in (select identifier from marks))"
                  if marked else "false")
        scope = self._scope(marked)
        model_filter, state_filter = ("true", "true") if isinstance(scope, str) else scope
        con.execute(
            f"""
            create or replace temp table _changes as
            with model as (
                select
                    {_key_sql(spec)} as record_key,
                    cast(m.{_quote(spec.identifier)} as varchar) as identifier,
                    {_payload_sql(spec)} as payload
                from {spec.relation} m
                where {model_filter}
            ),
            hashed as (select *, md5(payload) as row_hash from model),
            state as (select * from relay.sync_state where sync_name = $sync and {state_filter}),
            marks as (
                select record_key, identifier, payload from relay.sync_unconfirmed
                where sync_name = $sync and resend_after <= $now
            ),
            diff as (
                select
                    coalesce(m.record_key, s.record_key) as record_key,
                    case when s.record_key is null then 'add' when m.record_key is null then 'remove' else 'change' end as kind,
                    m.identifier,
                    s.identifier as prev_identifier,
                    m.payload,
                    s.payload as prev_payload,
                    m.row_hash,
                    {forced} as resend
                from hashed m
                full outer join state s on m.record_key = s.record_key
                where s.record_key is null or m.record_key is null or {changed} or {forced}
            ),
            steps as (
                select *, coalesce(identifier, prev_identifier) as addressed, false as leaving from diff
                union all
                -- A record whose identifier changed must also leave its old one. That step sorts with the old
                -- identifier, ahead of any other record's write to it, so the two never run in parallel.
                select *, prev_identifier, true from diff
                where kind = 'change' and identifier is distinct from prev_identifier and prev_identifier is not null
                union all
                -- A marked record no longer at the marked identifier leaves it again (unless a step above does).
                select k.record_key, 'remove', null, k.identifier, null, k.payload, null, true, k.identifier, true
                from marks k
                where not exists (select 1 from hashed m where m.record_key = k.record_key and m.identifier = k.identifier)
                  and not exists (select 1 from diff d where d.record_key = k.record_key and d.prev_identifier = k.identifier
                                  and d.identifier is distinct from d.prev_identifier)
            )
            select row_number() over w as rn, * exclude (addressed),
                   -- no other step addresses this identifier: nothing orders this row against another
                   addressed is distinct from lag(addressed) over w and addressed is distinct from lead(addressed) over w
                       as alone
            from steps
            window w as (order by addressed, leaving desc, record_key)
            order by rn  -- stored in rn order, so a flush's range of rns reads only a few row groups
            """,
            {"sync": spec.name, "now": self._planned_at},
        )
        self._resend = {k for (k,) in con.execute("select record_key from _changes where resend and kind = 'change' and not leaving").fetchall()}
        # Re-assertions of what the state already holds (a forced row that also changed counts as a change).
        r.resent = con.execute(
            "select count(*) from _changes c join relay.sync_state s on s.sync_name = $sync and s.record_key = c.record_key "
            "where c.resend and c.kind = 'change' and not c.leaving and c.row_hash = s.row_hash", {"sync": spec.name},
        ).fetchone()[0] if self._resend else 0
        counts = dict(con.execute("select kind, count(*) from _changes where not leaving group by kind").fetchall())
        r.planned_add, r.planned_change, r.planned_remove = (counts.get(k, 0) for k in ("add", "change", "remove"))
        null_ids = con.execute(
            "select record_key from _changes where kind <> 'remove' and identifier is null and not leaving order by rn"
        ).fetchall()
        samples = {}
        for kind in ("add", "change", "remove"):
            rows = con.execute(
                "select record_key, kind, identifier, prev_identifier, payload, prev_payload, row_hash, leaving "
                "from _changes where kind = ? and (kind = 'remove' or identifier is not null) and not leaving order by rn limit ?",
                [kind, SAMPLES_PER_KIND],
            ).fetchall()
            samples[kind] = [self.destination.describe(spec, ch) for row in rows for ch in self._change(row)]
        r.plan = {
            "counts": {"add": r.planned_add, "change": r.planned_change, "remove": r.planned_remove},
            "on_exit": spec.on_exit,
            "null_identifier_rows": len(null_ids),
            "samples": samples,
            # what the diff covered, and what the next run's may rely on (see _scope)
            "diff": scope if isinstance(scope, str) else "people dbt rebuilt since the last run",
            "build": self._build, "spec": self._fingerprint(),
        }
        if null_ids and self.apply:
            r.rejected += len(null_ids)
            for (key,) in null_ids:
                self._rejections.append(
                    (Change(key=key, kind="add", identifier=None), None,
                     f"identifier column {spec.identifier!r} is null; the row cannot be addressed at {spec.destination}")
                )
            # A record that lost its identifier cannot be written, but still leaves its old one (the step stays).
            self.con.execute("delete from _changes where kind <> 'remove' and identifier is null and not leaving")
        self._guard()
        if not self.apply:
            self.result.status = "planned"
            self._flush()

    def _fingerprint(self) -> str:
        spec = self.spec
        return hashlib.md5(json.dumps([spec.relation, spec.columns, spec.primary_key, spec.identifier]).encode()).hexdigest()

    def _scope(self, marked: int) -> tuple[str, str] | str:
        """Filters that limit the diff to the rows dbt rebuilt since this sync's last run, or why it covers
        everything. Sound because that run succeeded (after it, state matched the model as its build left it)
        and a scoped build changes only its scope's rows: the builds logged since must be that one and at most
        one scoped build after it."""
        spec, con = self.spec, self.con
        try:
            builds = con.execute(f"select invocation_id, full_refresh, completed_at is not null from {SCOPE_LOG} "
                                 "order by started_at desc limit 2").fetchall()
        except duckdb.CatalogException:
            builds = []
        self._build = builds[0][0] if builds else None
        if spec.scope_relation is None or self.full_resync:
            return "everything"
        if marked:
            return "everything: re-asserting writes of unknown fate"
        last = con.execute(
            "select status, json_extract_string(plan, '$.build'), json_extract_string(plan, '$.spec') from relay.sync_runs "
            "where sync_name = ? and mode = 'apply' and status <> 'running' order by started_at desc limit 1",
            [spec.name]).fetchone()
        if last is None or last[0] != "succeeded" or last[2] != self._fingerprint():
            return "everything: the last run did not succeed, or the sync's declaration changed since"
        if not builds or not builds[0][2]:
            return "everything: the last dbt build did not complete"
        if last[1] == builds[0][0]:
            return "false", "false"  # nothing was rebuilt since the last run
        if len(builds) < 2 or last[1] != builds[1][0] or builds[0][1] or not builds[1][2]:
            return "everything: the last dbt build was not a scoped build right after the last run's"
        i = spec.primary_key.index(SCOPE_KEY)
        state_key = "record_key" if len(spec.primary_key) == 1 else f"json_extract_string(record_key, '$[{i}]')"
        people = f"(select cast({SCOPE_KEY} as varchar) from {spec.scope_relation})"
        return f"cast(m.{_quote(SCOPE_KEY)} as varchar) in {people}", f"{state_key} in {people}"

    def _guard(self) -> None:
        r = self.result
        touched = r.planned_change + r.planned_remove - len(self._resend)  # a re-assertion changes nothing
        if self.full_resync or self.allow_large_change or r.state_rows == 0 or touched < self.min_guarded_rows:
            return
        share = touched / r.state_rows
        if share > self.max_change_share:
            raise SyncRefused(
                f"blast-radius guard: this run would change or remove {touched} of {r.state_rows} rows the destination "
                f"holds ({share:.0%} > {self.max_change_share:.0%}). Check the model; re-run with --allow-large-change "
                "to approve, or --full-resync to resend everything."
            )

    # ---------------------------------------------------------------- deliver
    def _change(self, row: tuple, rn: int | None = None) -> list[Change]:
        key, kind, identifier, prev_identifier, payload, prev_payload, row_hash, leaving = row
        new = json.loads(payload) if payload is not None else None
        old = json.loads(prev_payload) if prev_payload is not None else None
        attrs = self.spec.attribute_columns
        exits = self.spec.exit_values  # what a record leaving the model holds; every other field is cleared
        if leaving:  # the destination addresses records by identifier: clear or leave the old one
            return [Change(key, "remove", prev_identifier, exits, old, None, None, list(attrs), internal=True, rn=rn)]
        if kind == "change" and key in self._resend:  # re-asserted in full: a stale write may have set any field
            return [Change(key, kind, identifier, new, old, row_hash, payload, list(attrs), rn=rn)]
        if kind == "add" or (kind == "change" and (self.full_resync or identifier != prev_identifier)):
            fields = [c for c in attrs if new.get(c) is not None]
            return [Change(key, kind, identifier, new, old, row_hash, payload, fields, rn=rn)]
        if kind == "remove":
            return [Change(key, kind, prev_identifier, exits, old, None, None, list(attrs), rn=rn)]
        fields = [c for c in attrs if new.get(c) != old.get(c)]
        return [Change(key, kind, identifier, new, old, row_hash, payload, fields, rn=rn)]

    def _chunks(self, bulk: Bulk | None):
        """Changes in identifier order, never splitting one identifier's rows across chunks (so a
        destination that forbids parallel writes to one profile can keep them in one request); with each
        chunk, its bulk rows (see _bulk_rows), which are not among its changes."""
        last = self.con.execute("select coalesce(max(rn), 0) from _changes").fetchone()[0]
        carry = []
        for start in range(1, last + 1, self.tuning.chunk_rows):
            end = min(start + self.tuning.chunk_rows, last + 1)
            bulk_rows = self._bulk_rows(bulk, start, end) if bulk else []
            rows = []
            if len(bulk_rows) < end - start:  # else every step of the chunk is a bulk row
                rows = self.con.execute(
                    "select rn, record_key, kind, identifier, prev_identifier, payload, prev_payload, row_hash, "
                    "leaving from _changes anti join (select unnest($bulk) as rn) using (rn) "
                    "where rn >= $start and rn < $end order by rn",
                    {"bulk": [row[0] for row in bulk_rows], "start": start, "end": end},
                ).fetchall()
            changes = carry + [c for row in rows for c in self._change(row[1:], row[0])]
            if end > last:  # the last chunk: nothing follows to hold an identifier back for
                if changes or bulk_rows:
                    yield changes, bulk_rows
                return
            cut = len(changes)
            while cut > 0 and changes[cut - 1].identifier == changes[-1].identifier:
                cut -= 1
            if cut == 0 and not bulk_rows:  # one identifier fills the chunk: nothing to hold back
                cut = len(changes)
            carry = changes[cut:]
            yield changes[:cut], bulk_rows

    def _bulk_rows(self, bulk: Bulk, start: int, end: int) -> list[tuple]:
        """The chunk's bulk rows: adds alone at their identifier whose entry the destination can build (within
        its size limit), as (rn, entry, entry bytes or 0 when the destination has no byte limit) in rn order. Nothing else of them crosses into Python
        unless an answer blames some (see _items)."""
        limit = f"and strlen(e) <= {int(bulk.max_entry_bytes)}" if bulk.max_entry_bytes else ""
        rows = self.con.execute(
            f"""
            with entries as materialized (  -- each entry made once, however often it is named below
                select rn, {bulk.entry} as e from _changes c
                where rn >= $start and rn < $end and kind = 'add' and alone)
            select rn, e, {'strlen(e)' if bulk.max_bytes else 0} from entries where e is not null {limit} order by rn
            """,
            {"start": start, "end": end},
        ).fetchall()
        return rows if len(rows) >= bulk.min_items else []

    def _bulk_batches(self, bulk: Bulk, rows: list[tuple]):
        """Bulk batches of consecutive rows, as many to a batch as the count and byte limits allow."""
        rns = [row[0] for row in rows]
        entries = [row[1] for row in rows]
        # ends[i]: the bytes of the first i entries, a separator each (a bisection finds where a batch ends,
        # instead of a Python step per entry).
        ends = list(itertools.accumulate((row[2] + 1 for row in rows), initial=0)) if bulk.max_bytes else []
        first = 0
        while first < len(rns):
            last = min(first + bulk.max_items, len(rns))
            if bulk.max_bytes:  # the most entries that fit, at least one
                last = max(first + 1, bisect.bisect_right(ends, ends[first] + bulk.max_bytes, first + 1, last + 1) - 1)
            batch = self.destination.bulk_batch(self.spec, entries[first:last])
            batch.items, batch.bulk = [], rns[first:last]
            yield batch
            first = last

    def _items(self, batch: Batch) -> list[Change]:
        """A batch's changes, a bulk batch's read in full from _changes (in entry order) the first time."""
        if batch.bulk:
            rns = batch.bulk
            rows = self.con.execute(
                "select rn, record_key, kind, identifier, prev_identifier, payload, prev_payload, row_hash, leaving "
                "from _changes semi join (select unnest($rns) as rn) using (rn) where rn between $lo and $hi order by rn",
                {"rns": rns, "lo": rns[0], "hi": rns[-1]},
            ).fetchall()
            batch.items, batch.bulk = [c for row in rows for c in self._change(row[1:], row[0])], None
        return batch.items

    def _audiences(self) -> list[str]:
        if self.spec.object != "membership":
            return []
        rows = self.con.execute(
            "select distinct json_extract_string(coalesce(payload, prev_payload), '$.audience') from _changes order by 1"
        ).fetchall()
        return [a for (a,) in rows if a is not None]

    def _nothing_to_send(self, change: Change) -> bool:
        if change.kind == "remove" and not change.internal:
            return self.spec.on_exit == "ignore"  # the destination keeps the record; we only forget it
        return self.spec.object == "attributes" and change.kind == "change" and not change.fields

    async def _apply(self) -> None:
        """Plan, then deliver. An attribute sync's setup needs nothing from the plan, so it runs alongside (a
        first sync's attribute definitions are round trips: seconds where an API allows 3 requests/s). A run
        the blast-radius guard then refuses may have defined a new attribute at the destination, never a row."""
        cursor = self.con.cursor() if self.spec.object != "membership" else None  # before the plan's thread runs
        # Planning starts now, on a thread, while the client is made (its TLS context: ~30 ms).
        plan = asyncio.get_running_loop().run_in_executor(None, self._plan)
        try:
            client = self.destination.open_client()
        except BaseException:
            await asyncio.gather(plan, return_exceptions=True)
            raise
        async with client:
            early = asyncio.create_task(self._setup(client, [], cursor)) if cursor is not None else None
            try:
                await plan
            except BaseException:
                if early is not None:
                    early.cancel()
                    await asyncio.gather(early, return_exceptions=True)
                raise
            await self._deliver(client, early)

    async def _deliver(self, client, setup: asyncio.Task | None) -> None:
        spec = self.spec
        self._total = self.result.planned - self.result.rejected
        # While requests are in flight, the warehouse work (reading the next chunks, writing state) runs on a
        # thread of its own, one statement at a time on this run's connection.
        self._db = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-warehouse")
        # The setting is the database's, which runs in other threads of this process share: a run lowers it
        # only from where it finds it and sets back what it found, so a race costs speed and leaves no change.
        threads = self.con.execute("select current_setting('threads')").fetchone()[0]
        lowered = self.tuning.delivery_threads is not None and self.tuning.delivery_threads < threads
        if lowered:
            self.con.execute(f"set threads = {int(self.tuning.delivery_threads)}")
        try:
            if setup is None and self._total:  # a membership sync's: the audiences come from the plan
                setup = asyncio.create_task(self._setup(client, self._audiences(), self.con.cursor()))
            bulk = self.destination.bulk(spec)
            chunks = self._chunks(bulk)
            # Reading starts now, so the first chunks are ready when setup is done (reading needs nothing
            # setup makes). Read ahead several chunks: a state write queued on the thread then never
            # leaves the requests waiting for their next chunk.
            ahead = collections.deque(self._in_db(next, chunks, None) for _ in range(self.tuning.read_ahead_chunks))
            if setup is not None:
                await setup
            await self._send_all(client, bulk, chunks, ahead)
            stats = client.stats
            self.result.requests, self.result.retries, self.result.throttled = stats.requests, stats.retries, stats.throttled
        finally:
            self._db.shutdown()  # waits: once the loop is done, nothing else may use the connection
            if lowered:
                self.con.execute(f"set threads = {int(threads)}")
        if self._flushing is not None:
            await self._flushing  # a state write that failed fails the run

    async def _setup(self, client, audiences: list[str], cursor: duckdb.DuckDBPyConnection) -> None:
        """On a connection of its own (`cursor`, which shares the database): the run's is busy elsewhere."""
        spec = self.spec
        try:
            await self.destination.setup(spec, client, ObjectRegistry(cursor, spec.destination, self.destination.account),
                                         audiences)
        except (SetupError, DestinationAuthError, RetriesExhausted):
            raise
        except Exception as exc:  # an answer the adapter cannot read: say so, send nothing
            raise SetupError(f"{spec.destination} answered setup in a way Relay does not understand "
                             f"({type(exc).__name__}: {REDACT.excerpt(exc, 200)}); nothing was sent") from exc
        finally:
            cursor.close()

    async def _send_all(self, client, bulk: Bulk | None, chunks, ahead: collections.deque) -> None:
        sem = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task] = set()
        failures = 0
        while (chunk := await ahead.popleft()) is not None:
            ahead.append(self._in_db(next, chunks, None))
            changes, bulk_rows = chunk
            for change in [c for c in changes if self._nothing_to_send(c)]:
                self._ack(change)
            batches = self.destination.batches(self.spec, [c for c in changes if not self._nothing_to_send(c)])
            if bulk_rows:
                batches = itertools.chain(self._bulk_batches(bulk, bulk_rows), batches)
            for batch in batches:
                await sem.acquire()
                task = asyncio.create_task(self._send(client, batch))
                task.add_done_callback(lambda _t: sem.release())
                tasks.add(task)
                done = {t for t in tasks if t.done()}
                tasks -= done
                failures += sum(self._settle(t) for t in done)
                self._flush_if_due()
                if failures >= 3:
                    self.result.message = "stopped early: the destination kept failing after retries"
                    break
            if failures >= 3:
                break
        # Everything is sent. While the last request is answered, write what the others acknowledged, so what
        # is left to write after it is only its own rows (one write: each has a fixed cost).
        while tasks:
            done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                self._settle(t)
            self._flush_if_due(eager=len(tasks) == 1)

    def _in_db(self, fn, *args) -> asyncio.Future:
        return asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    def _settle(self, task: asyncio.Task) -> int:
        exc = task.exception()
        if exc is None:
            return 0
        if isinstance(exc, DestinationAuthError):
            raise exc
        self._clean = False
        if isinstance(exc, RetriesExhausted):
            log.warning("%s: %s", self.spec.name, REDACT(exc))
            self.result.message = REDACT(exc)
            return 1
        raise exc

    async def _send(self, client, batch: Batch) -> None:
        with watch_ambiguity() as ambiguous:
            try:
                await self._send_batch(client, batch)
            finally:
                if ambiguous:  # acknowledged or not, a copy of this write may still land
                    self._unconfirmed += batch.bulk or [c.rn for c in batch.items]

    async def _send_batch(self, client, batch: Batch) -> None:
        if batch.job is not None:
            outcomes = await batch.job(client, lambda: self._in_db(self._items, batch))
            if outcomes is None:
                self._ack_batch(batch)
            for change, error in outcomes or []:
                if error is None:
                    self._ack(change)
                else:
                    self._record([change], None, error)
            return
        if batch.request is None:
            self._record(batch.items, None, batch.error)
            return
        response = await client.send(batch.request)
        if response.status_code in (401, 403):
            raise DestinationAuthError(
                f"{self.spec.destination} refused the credentials (HTTP {response.status_code}) for {batch.request.label}; "
                f"check {self.destination.credential_hint}"
            )
        if batch.bulk:
            if self.destination.acknowledged(self.spec, response):
                self._ack_batch(batch)
                if self.on_ack:
                    self.on_ack()
                return
            await self._in_db(self._items, batch)  # some entries failed: with their values, as a split resends them
        try:
            outcomes = self.destination.interpret(self.spec, batch, response)
        except SplitBatch as split:
            if split.rejected:
                # The answer names the bad rows: record them; the rest were not applied, so resend them.
                for i, reason in split.rejected.items():
                    self._record([batch.items[i]], response.status_code, reason)
                parts = [[c for i, c in enumerate(batch.items) if i not in split.rejected]]
            elif len(batch.items) == 1:
                reason = f"HTTP {response.status_code}: {REDACT.excerpt(response.text, 300)}"
                self._record(batch.items, response.status_code, reason)
                return
            else:
                # Bisect a batch the destination refused as a whole, to isolate the bad rows.
                half = len(batch.items) // 2
                parts = [batch.items[:half], batch.items[half:]]
            for part in parts:
                for sub in self.destination.batches(self.spec, part):
                    await self._send(client, sub)
            return
        except Exception as exc:
            # An answer the adapter cannot read (a body of an undocumented shape): nothing is known to be
            # applied, so the rows stay unsent and the failure counts like exhausted retries.
            raise RetriesExhausted(
                f"{batch.request.label}: HTTP {response.status_code} with an answer "
                f"{self.spec.destination} does not document ({type(exc).__name__}): {excerpt(response)}") from exc
        for change, error in outcomes:
            if error is None:
                self._ack(change)
            else:
                self._record([change], response.status_code, error)
        if any(e is None for _, e in outcomes):
            if self.on_ack:
                self.on_ack()

    def _record(self, changes: list[Change], status: int | None, error: str) -> None:
        self._clean = False
        for change in changes:
            self._rejections.append((change, status, REDACT(error)))
            if not change.internal:
                self.result.rejected += 1
                self._tick(1)

    def _ack(self, change: Change) -> None:
        if change.internal:  # a step of another row, which is recorded with that row
            return
        if change.kind == "remove":
            self._removes.append(change.rn)
        else:
            self._upserts.append(change.rn)
        if change.kind == "change":
            self._fields.append((change.rn, change.fields))
        setattr(self.result, f"acked_{change.kind}", getattr(self.result, f"acked_{change.kind}") + 1)
        self._tick(1)

    def _ack_batch(self, batch: Batch) -> None:
        if not batch.bulk:
            for change in batch.items:
                self._ack(change)
            return
        self._upserts += batch.bulk  # bulk rows are adds
        self.result.acked_add += len(batch.bulk)
        self._tick(len(batch.bulk))

    def _tick(self, n: int) -> None:
        self._done_rows += n
        if self.progress:
            self.progress(self._done_rows, self._total)

    # ---------------------------------------------------------------- ledger writes
    def _flush_if_due(self, eager: bool = False) -> None:
        """During delivery: start a state write on the warehouse thread, one at a time. `eager`: whatever is
        waiting, however little."""
        if self._flushing is not None and not self._flushing.done():
            return
        waiting = len(self._upserts) + len(self._removes)
        if (eager and (waiting or self._rejections)) or waiting >= self.tuning.flush_every_rows \
                or time.monotonic() - self._last_flush >= self.tuning.flush_every_s:
            if self._flushing is not None:
                self._flushing.result()  # a state write that failed fails the run
            self._flushing = self._in_db(self._write, self._take())

    def _flush(self) -> None:
        self._write(self._take())

    def _take(self) -> tuple:
        taken = self._upserts, self._removes, self._fields, self._rejections, self._unconfirmed
        self._upserts, self._removes, self._fields, self._rejections, self._unconfirmed = [], [], [], [], []
        self._last_flush = time.monotonic()
        return taken

    def _write(self, taken: tuple, then: Callable[[], None] | None = None) -> None:
        """Write acknowledged rows to state and rejections to the ledger, and run `then`, in one transaction."""
        upserts, removes, fields, rejections, unconfirmed = taken
        if not upserts and not removes and not rejections and not unconfirmed and then is None:
            return
        now, run_id, name = _now(), self.result.run_id, self.spec.name
        con = self.con
        con.execute("begin")
        try:
            # Only row numbers cross from Python: identifier, hash and payload are already in _changes, and the
            # range lets DuckDB skip the row groups outside it (a flush stays O(rows flushed)).
            if upserts:
                acked = {"sync": name, "now": now, "run": run_id, **_runs(upserts)}
                # sync_state has no key index (it made every write look keys up, and every checkpoint rewrite
                # it whole: seconds at millions of rows). Keys stay unique because only this run writes its
                # sync's state (_claim): an add's key was not there when the run planned, and a change
                # replaces its record's row.
                con.execute(STATE_INSERT.format(kind="add"), acked)
                if fields:  # changes were acknowledged
                    con.execute(ACKED_CHANGES, {k: acked[k] for k in ("sync", "firsts", "lasts", "lo", "hi")})
                    con.execute("delete from relay.sync_state where sync_name = $sync and record_key in "
                                "(select record_key from _acked_changes)", {"sync": name})
                    con.execute("""
                        insert into relay.sync_state by name
                        select $sync as sync_name, record_key, identifier, row_hash, payload,
                               coalesce(first_synced_at, $now) as first_synced_at, $now as last_synced_at,
                               $run as last_run_id
                        from _acked_changes""", {"sync": name, "now": now, "run": run_id})
            if removes:
                con.execute(
                    "delete from relay.sync_state where sync_name = $sync and record_key in "
                    "(select record_key from _changes where rn in (select unnest($rns)) and not leaving)",
                    {"sync": name, "rns": removes},
                )
            if upserts or removes:
                # Null fields: an add, which sends every attribute that is set, or a remove, the whole record.
                con.execute(
                    """
                    insert into relay.sync_deliveries
                    select $run, $sync, c.record_key, if(c.kind = 'remove', c.prev_identifier, c.identifier), c.kind,
                           f.fields, $now
                    from _changes c semi join """ + ACKED_STEPS + """ acked using (rn)
                    left join (select unnest($crns) as rn, unnest($cfields) as fields) f using (rn)
                    where c.rn between $lo and $hi and not c.leaving
                    """,
                    {"run": run_id, "sync": name, "now": now, **_runs(upserts + removes),
                     "crns": [r for r, _ in fields], "cfields": [f for _, f in fields]},
                )
            if unconfirmed:
                # Marked at the identifier the step addressed, with what it wrote there (or removed from there).
                self.result.unconfirmed += len(set(unconfirmed))
                con.execute(
                    """
                    insert into relay.sync_unconfirmed
                    select distinct on (record_key, identifier) $sync, record_key, identifier, payload, $until
                    from (select record_key, if(leaving or kind = 'remove', prev_identifier, identifier) as identifier,
                                 if(leaving or kind = 'remove', prev_payload, payload) as payload
                          from _changes where rn in (select unnest($rns)))
                    where identifier is not null
                    on conflict (sync_name, record_key, identifier) do update set
                        payload = excluded.payload, resend_after = excluded.resend_after
                    """,
                    {"sync": name, "rns": unconfirmed,
                     "until": now + timedelta(seconds=resend_unconfirmed_s())},
                )
            if rejections:
                con.execute(
                    """
                    insert into relay.sync_rejections
                    select $run, $sync, unnest($keys), unnest($ids), unnest($kinds), unnest($codes), unnest($reasons), $now
                    """,
                    {
                        "run": run_id, "sync": name, "now": now,
                        "keys": [c.key for c, _, _ in rejections], "ids": [c.identifier for c, _, _ in rejections],
                        "kinds": [c.kind for c, _, _ in rejections], "codes": [s for _, s, _ in rejections],
                        "reasons": [reason[:1000] for _, _, reason in rejections],
                    },
                )
            if then is not None:
                then()
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise

    def _insert_run(self) -> None:
        # Runs left 'running' by a killed process are marked so operators see them.
        self.con.execute(
            "update relay.sync_runs set status = 'abandoned', message = 'process ended before the run finished' "
            "where sync_name = ? and status = 'running'",
            [self.spec.name],
        )
        r = self.result
        self.con.execute(
            "insert into relay.sync_runs (run_id, sync_name, destination, mode, status, full_resync, started_at) "
            "values (?, ?, ?, ?, 'running', ?, ?)",
            [r.run_id, r.sync_name, r.destination, r.mode, r.full_resync, _now()],
        )

    def _update_run(self, started: float) -> None:
        r = self.result
        r.duration_s = round(time.monotonic() - started, 3)
        r.rows_per_s = round(r.acked / r.duration_s, 1) if r.duration_s and r.acked else 0.0
        cols = [
            "status", "model_rows", "state_rows", "planned_add", "planned_change", "planned_remove", "acked_add",
            "acked_change", "acked_remove", "rejected", "unsent", "requests", "retries", "throttled", "resent",
            "unconfirmed", "duration_s", "rows_per_s", "message",
        ]
        self.con.execute(
            f"update relay.sync_runs set {', '.join(f'{c} = ?' for c in cols)}, plan = ?, finished_at = ? where run_id = ?",
            [getattr(r, c) for c in cols] + [json.dumps(r.plan, default=str), _now(), r.run_id],
        )


def _runs(rns: list[int]) -> dict:
    """Step numbers as the parameters of ACKED_STEPS: runs of consecutive numbers, and their range ($lo..$hi,
    which lets DuckDB skip the row groups outside it)."""
    rns = sorted(rns)
    breaks = [i for i in range(1, len(rns)) if rns[i] != rns[i - 1] + 1]
    return {"firsts": [rns[0]] + [rns[i] for i in breaks], "lasts": [rns[i - 1] for i in breaks] + [rns[-1]],
            "lo": rns[0], "hi": rns[-1]}
