"""What a diff may cover: only the people dbt rebuilt since this sync's last run, or everything.

Limiting the diff is sound when this sync's last run succeeded (after it, the state matched the model as its
build left it) and a scoped dbt build changes only its scope's rows: the builds logged since must then be that
run's build and at most one scoped build after it. Anything else diffs everything."""

import hashlib
import json

import duckdb

from sinks.declarations import SCOPE_KEY, SCOPE_LOG, SyncSpec
from sinks.engine.changes import quote

Scope = tuple[str, str] | str  # (model filter, state filter), or why the diff covers everything


def fingerprint(spec: SyncSpec) -> str:
    """What a run's state depends on in the declaration: a change to it makes the next diff cover everything."""
    return hashlib.md5(json.dumps([spec.relation, spec.columns, spec.primary_key, spec.identifier]).encode()).hexdigest()


def latest_builds(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """The last two dbt builds: (invocation_id, full_refresh, completed), newest first."""
    try:
        return con.execute(f"select invocation_id, full_refresh, completed_at is not null from {SCOPE_LOG} "
                           "order by started_at desc limit 2").fetchall()
    except duckdb.CatalogException:
        return []


def decide(con: duckdb.DuckDBPyConnection, spec: SyncSpec, builds: list[tuple], *, full_resync: bool,
           marked: int) -> Scope:
    """The filters that limit the diff to the rows dbt rebuilt since this sync's last run, or why it covers
    everything. `marked`: records a write of unknown fate may have undone, which are re-asserted wherever they are."""
    if spec.scope_relation is None or full_resync:
        return "everything"
    if marked:
        return "everything: re-asserting writes of unknown fate"
    last = con.execute(
        "select status, json_extract_string(plan, '$.build'), json_extract_string(plan, '$.spec') from relay.sync_runs "
        "where sync_name = ? and mode = 'apply' and status <> 'running' order by started_at desc limit 1",
        [spec.name]).fetchone()
    if last is None or last[0] != "succeeded" or last[2] != fingerprint(spec):
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
    return f"cast(m.{quote(SCOPE_KEY)} as varchar) in {people}", f"{state_key} in {people}"
