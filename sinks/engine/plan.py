"""Planning a run: refuse a model that cannot be synced, diff it against the state within its scope
(diff.sql), count and sample the steps, and apply the blast-radius guard."""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from sinks.declarations import SyncSpec
from sinks.destinations.base import Destination
from sinks.engine import merges, scope
from sinks.engine.changes import STEP_COLUMNS, key_sql, payload_sql, quote, to_change
from sinks.engine.ledger import now
from sinks.engine.result import RunResult, SyncRefused
from sinks.engine.settings import Guard

DIFF_SQL = Path(__file__).with_name("diff.sql").read_text()
FORCED = "(m.record_key in (select record_key from marks) or m.identifier in (select identifier from marks))"


@dataclass(frozen=True)
class Plan:
    planned_at: datetime
    resend: frozenset[str]  # keys re-asserted in full: a write of unknown fate may have set any field
    unaddressable: list[str]  # keys of rows whose identifier is null: they cannot be written
    merges: int = 0  # retired records the plan carries into their survivor (merges.py), of any outcome


def check_model(con: duckdb.DuckDBPyConnection, spec: SyncSpec, r: RunResult) -> None:
    """Refuse a model that cannot be synced (missing, duplicate keys) before anything else happens."""
    try:
        r.model_rows = con.execute(f"select count(*) from {spec.relation}").fetchone()[0]
    except duckdb.CatalogException as exc:
        raise SyncRefused(f"sync model {spec.relation} does not exist in the warehouse: run dbt build first") from exc
    duplicates = con.execute(
        f"select {key_sql(spec)} as k, count(*) from {spec.relation} m group by 1 having count(*) > 1 "
        "order by 2 desc, 1 limit 5"
    ).fetchall()
    if duplicates:
        shown = ", ".join(f"{k} (x{n})" for k, n in duplicates)
        raise SyncRefused(
            f"sync model {spec.relation} has duplicate primary keys ({', '.join(spec.primary_key)}): {shown}. "
            "Refusing to pick one; fix the model."
        )


def diff_sql(spec: SyncSpec, covered: scope.Scope, *, full_resync: bool, marked: bool) -> list[str]:
    """The statements of diff.sql: the steps ($sync, $now), then _changes ($sync), then a cleanup."""
    model_filter, state_filter = ("true", "true") if isinstance(covered, str) else covered
    return DIFF_SQL.format(
        key=key_sql(spec), identifier=f"cast(m.{quote(spec.identifier)} as varchar)", payload=payload_sql(spec),
        relation=spec.relation, model_filter=model_filter, state_filter=state_filter,
        changed="true" if full_resync else "m.row_hash is distinct from s.row_hash",
        forced=FORCED if marked else "false",
    ).split(";\n\n")


def make_plan(con: duckdb.DuckDBPyConnection, spec: SyncSpec, destination: Destination, r: RunResult, *,
              full_resync: bool, samples_per_kind: int) -> Plan:
    """Diff the model against the state into _changes, and describe the plan in `r` (counts, samples, scope)."""
    if spec.object == "membership":  # what the destination moved to a survivor, at the survivor
        r.plan["carried_by_merges"] = merges.carry(con, spec, destination.name)
    r.state_rows = con.execute("select count(*) from relay.sync_state where sync_name = ?", [spec.name]).fetchone()[0]
    planned_at = now()
    marked = con.execute(
        "select count(*) from relay.sync_unconfirmed where sync_name = $sync and resend_after <= $now",
        {"sync": spec.name, "now": planned_at}).fetchone()[0]
    builds = scope.latest_builds(con)
    covered = scope.decide(con, spec, builds, full_resync=full_resync, marked=marked)
    steps, changes, cleanup = diff_sql(spec, covered, full_resync=full_resync, marked=bool(marked))
    con.execute(steps, {"sync": spec.name, "now": planned_at})
    con.execute(changes, {"sync": spec.name})
    con.execute(cleanup)
    merged = merges.plan(con, spec, destination, r, samples_per_kind)
    resend = frozenset(k for (k,) in con.execute(
        "select record_key from _changes where resend and kind = 'change' and not leaving").fetchall())
    # Re-assertions of what the state already holds (a forced row that also changed counts as a change).
    r.resent = con.execute(
        "select count(*) from _changes c join relay.sync_state s on s.sync_name = $sync and s.record_key = c.record_key "
        "where c.resend and c.kind = 'change' and not c.leaving and c.row_hash = s.row_hash", {"sync": spec.name},
    ).fetchone()[0] if resend else 0
    counts = dict(con.execute("select kind, count(*) from _changes where not leaving group by kind").fetchall())
    r.planned_add, r.planned_change, r.planned_remove, r.planned_merge = (
        counts.get(k, 0) for k in ("add", "change", "remove", "merge"))
    unaddressable = [k for (k,) in con.execute(
        "select record_key from _changes where kind <> 'remove' and identifier is null and not leaving order by rn"
    ).fetchall()]
    r.plan = {
        **r.plan,
        "counts": {"add": r.planned_add, "change": r.planned_change, "remove": r.planned_remove,
                   "merge": r.planned_merge},
        "on_exit": spec.on_exit,
        "null_identifier_rows": len(unaddressable),
        "samples": samples(con, spec, destination, resend, full_resync, samples_per_kind),
        # what the diff covered, and what the next run's may rely on (see scope.decide)
        "diff": covered if isinstance(covered, str) else "people dbt rebuilt since the last run",
        "build": builds[0][0] if builds else None, "spec": scope.fingerprint(spec),
    }
    return Plan(planned_at, resend, unaddressable, merged)


def samples(con: duckdb.DuckDBPyConnection, spec: SyncSpec, destination: Destination, resend: frozenset[str],
            full_resync: bool, per_kind: int) -> dict[str, list]:
    """The first few steps of each kind, as the destination would be sent them."""
    shown = {}
    for kind in ("add", "change", "remove", "merge"):
        rows = con.execute(
            f"select {STEP_COLUMNS} from _changes where kind = ? and (kind = 'remove' or identifier is not null) "
            "and not leaving order by rn limit ?",
            [kind, per_kind],
        ).fetchall()
        shown[kind] = [destination.describe(spec, to_change(spec, row, resend=resend, full_resync=full_resync))
                       for row in rows]
    return shown


def set_aside_unaddressable(con: duckdb.DuckDBPyConnection) -> None:
    """Rows without an identifier are not written; a record that lost its identifier still leaves its old one
    (that step stays)."""
    con.execute("delete from _changes where kind <> 'remove' and identifier is null and not leaving")


def check_blast_radius(guard: Guard, r: RunResult, resent_keys: int, full_resync: bool, merged: int = 0) -> None:
    """Refuse an abnormal share of changes and removes (merges count), or of merges alone, which no destination
    can undo (a full resync changes no merge, so it does not approve one)."""
    if not guard.allow_large_change and r.state_rows and merged >= guard.min_rows \
            and merged / r.state_rows > guard.max_merge_share:
        raise SyncRefused(
            f"blast-radius guard: this run would merge {merged} of the {r.state_rows} records {r.destination} holds "
            f"into others ({merged / r.state_rows:.1%} > {guard.max_merge_share:.1%}), which cannot be undone. Check "
            "the identity rules (marts.identity_merges); re-run with --allow-large-change to approve.")
    touched = r.planned_change + r.planned_remove + r.planned_merge - resent_keys  # a re-assertion changes nothing
    if full_resync or guard.allow_large_change or r.state_rows == 0 or touched < guard.min_rows:
        return
    share = touched / r.state_rows
    if share > guard.max_change_share:
        raise SyncRefused(
            f"blast-radius guard: this run would change or remove {touched} of {r.state_rows} rows the destination "
            f"holds ({share:.0%} > {guard.max_change_share:.0%}). Check the model; re-run with --allow-large-change "
            "to approve, or --full-resync to resend everything."
        )
