"""What the commands print about runs: a sync's progress, its one-line result, the demo's summary and the
per-sync table that ends `relay demo` and `relay run`."""

import json
import sys
import time
from datetime import datetime

import duckdb

from relay import config, pipeline


def progress(label: str, stream=None):
    """A progress report for a sync: on a terminal a bar with rows/s and time left, redrawn at most 10 times a
    second; elsewhere (a log, a pipe) a plain line every 10 seconds."""
    stream = stream or sys.stderr
    tty = stream.isatty()
    every = 0.1 if tty else 10.0
    started = time.monotonic()
    last = [started]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        finished = done >= total
        if now - last[0] < every and not (tty and finished):
            return
        last[0] = now
        rate = done / (now - started) if now > started else 0.0
        left = f"{(total - done) / rate:.0f}s left" if rate and not finished else "done" if finished else ""
        text = f"{done:,}/{total:,} {rate:,.0f} rows/s {left}"
        if tty:
            filled = int(30 * done / total) if total else 30
            stream.write(f"\r  {label:<40} [{'#' * filled}{'.' * (30 - filled)}] {text}" + ("\n" if finished else ""))
        else:
            stream.write(f"  {label}: {text}\n")
        stream.flush()

    return report


def print_run(r) -> None:
    line = (f"  {r.sync_name:<36} {r.status:<9} add={r.planned_add} change={r.planned_change} "
            f"remove={r.planned_remove}")
    merges = (r.plan.get("merges") or {}).get("outcomes")
    if merges:  # by outcome: merged (the planned merge steps), retired, exited, adopted (removes)
        line += " " + " ".join(f"{outcome}={n}" for outcome, n in merges.items())
    if r.mode == "apply":
        line += (f" | acked={r.acked} rejected={r.rejected} unsent={r.unsent} requests={r.requests} "
                 f"retries={r.retries} {r.rows_per_s:.0f} rows/s")
    print(line)
    if r.message:
        print(f"    {r.message}")


def print_plan(plan: dict) -> None:
    """What a plan would send: an events sync's counts by event name and by skip reason, sample payloads."""
    for title in ("events", "skipped"):
        if plan.get(title):
            print(f"      {title}: " + ", ".join(f"{k} {n:,}" for k, n in plan[title].items()))
    for kind, samples in plan.get("samples", {}).items():
        for sample in samples:
            print(f"      {kind}: {json.dumps(sample, default=str)[:300]}")
    for sample in (plan.get("merges") or {}).get("samples", []):
        print(f"      identity merge: {json.dumps(sample, default=str)[:300]}")


def print_summary(since: datetime) -> None:
    from sinks.engine import connect

    summary = pipeline.warehouse_summary()
    print("== rows per layer")
    for schema, tables in summary["layers"].items():
        print(f"   {schema:<12} {len(tables):>3} tables {sum(tables.values()):>12,} rows")
    with connect(config.warehouse_path(), read_only=True) as con:  # the run is over: nothing else holds the file
        segments = con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by 1").fetchall()
        print("== marts")
        for (table,) in segments:
            print(f"   marts.{table:<38} {summary['layers']['marts'][table]:>10,}")
        sizes = con.execute("select definitions.segment, definitions.segment_category, count(memberships.customer_key) "
                            "from marts.segment_definitions as definitions left join marts.segment_memberships as "
                            "memberships using (segment) group by all order by 1").fetchall()
        print("== segments (relay segments: destinations and the next sync's changes)")
        for segment, category, size in sizes:
            print(f"   {segment:<38} {category:<15} {size:>8,} members")
    print_syncs(since)


def print_syncs(since: datetime) -> list[tuple]:
    """One line per sync run since `since` (the end of `relay demo` and `relay run`); returns the runs."""
    from sinks.engine import connect

    with connect(config.warehouse_path(), read_only=True) as con:  # the run is over: nothing else holds the file
        try:
            runs = con.execute(
                "select sync_name, status, planned_add + planned_change + planned_remove + coalesce(planned_merge, 0), "
                "acked_add + acked_change + acked_remove + coalesce(acked_merge, 0), rejected, requests, "
                "coalesce(skipped, 0) from relay.sync_runs where started_at >= ? and mode = 'apply' order by sync_name",
                [since]).fetchall()
            holds = dict(con.execute("select sync_name, count(*) from relay.sync_state group by 1").fetchall())
        except duckdb.CatalogException:  # no sync ever ran here
            return []
    if not runs:
        return []
    print("== syncs in this run (destination now holds; skipped: events never to be sent, relay.sync_skipped)")
    for name, status, planned, acked, rejected, requests, skipped in runs:
        print(f"   {name:<38} {status:<9} changes={planned or 0:<7} acked={acked or 0:<7} rejected={rejected or 0:<5} "
              f"requests={requests or 0:<5} holds={holds.get(name, 0):,}" + (f" skipped={skipped:,}" if skipped else ""))
    return runs
