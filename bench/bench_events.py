"""Throughput of an events first sync per destination, against the emulator's ceiling for the same requests.

    .venv/bin/python bench/bench_events.py [--events 1000000] [--ceiling-events 200000] [--people 100000]
                                           [--concurrency 8] [--destinations customerio,talon_one,cordial]
                                           [--out artifacts/bench]

For each destination, the shipped events sync model's declaration (sync_<destination>__events, from the dbt
manifest: its columns, so its width) over a table of --events synthetic events of --people people, all
recent, with `backfill` opened to everything: a first sync by the engine in a process of its own (events/s,
requests; the whole run: plan, journal, state writes). Then the emulator's ceiling: --ceiling-events other
events, turned into requests by the same adapter (so the same events per request), serialised before the
clock starts and sent by a minimal client with the same concurrency. Cordial records activities of existing
contacts only: its --people contacts are synced first (not timed). Emulators run in a process of their own,
with rate limits off and the client's budgets out of reach. Prints a table, writes --out/events.json.
Not collected by pytest (it lives outside tests/).
"""

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/support

from bench import hammer  # noqa: E402
from bench_destinations import BUDGETS_OUT_OF_REACH, make_model  # noqa: E402
from bench_destinations import spec as people_spec  # noqa: E402
from sinks import destinations  # noqa: E402
from sinks.declarations import load_specs  # noqa: E402
from sinks.destinations.base import Change  # noqa: E402
from sinks.engine.changes import key_sql, payload_sql, quote  # noqa: E402
from support.emulators import EmulatorProcess, destination_env  # noqa: E402
from support.sync_process import finish, start_sync  # noqa: E402

NAMES = ("Checkout Abandoned", "Segment Entered", "Segment Exited")
TARGET = 0.8  # engine / ceiling


def event_spec(destination: str):
    """The shipped events sync of `destination`, reading the bench's table, every event in its backfill."""
    manifest = ROOT / "dbt_project" / "target" / "manifest.json"
    shipped = next(s for s in load_specs(manifest) if s.name == f"sync_{destination}__events")
    return replace(shipped, name=f"bench__{destination}_events", relation="syncs.bench_events", clock=None,
                   events=replace(shipped.events, backfill_s=None, max_age_s=None))


def column_sql(spec, column: str, kind: str, people: int) -> str:
    """A synthetic value of event i for one column of the model, by its role, else by its type."""
    person = f"lpad(cast(i % {people} as varchar), 7, '0')"
    options = spec.events
    if column in spec.primary_key:
        return "'bench:' || i"
    if column == "email":
        return f"'person' || (i % {people}) || '@example.com'"
    if column == "customer_key":
        return f"'c' || {person}"
    if column == options.name_column:
        names = ", ".join(f"'{n}'" for n in NAMES)
        return f"[{names}][i % 3 + 1]" if spec.destination != "talon_one" else \
            f"lower(replace([{names}][i % 3 + 1], ' ', '_'))"
    if column == options.time_column:  # the last day, a second apart
        at = "now()::timestamp - to_seconds(i % 86400)"
        return f"epoch({at})::bigint" if kind == "bigint" else at
    if column == options.consent_column:
        return "true"
    if kind == "varchar":
        return f"'{column}-' || i"
    if kind.startswith("decimal") or kind == "double":
        return f"cast((i % 50000) / 100 as {kind})"
    if kind in ("bigint", "integer"):
        return "i"
    if kind == "boolean":
        return "i % 2 = 0"
    raise SystemExit(f"bench_events: no synthetic value for column {column!r} of type {kind!r}")


def make_events(warehouse: Path, spec, events: int, start: int, people: int) -> None:
    columns = ", ".join(f"{column_sql(spec, c, k, people)} as {quote(c)}" for c, k in spec.columns.items())
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists syncs")
        con.execute(f"create or replace table syncs.bench_events as select {columns} from range({start}, {start + events}) t(i)")


def prebuilt(spec, warehouse: Path) -> list[tuple[str, str, bytes, int]]:
    """The adapter's own requests for every event of the table: (method, path, body, events in it)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        steps = con.execute(f"select {key_sql(spec)}, cast(m.{quote(spec.identifier)} as varchar), {payload_sql(spec)} "
                            f"from {spec.relation} m").fetchall()
    changes = [Change(key, "add", identifier, json.loads(payload), fields=list(spec.attribute_columns))
               for key, identifier, payload in steps]
    batches = destinations.build(spec.destination).batches(spec, changes)
    return [(b.request.method, b.request.url, b.request.content or json.dumps(b.request.json).encode(), len(b.items))
            for b in batches]


def contacts(url: str, warehouse: Path, people: int, env: dict) -> None:
    """Cordial's contacts for the events' emails (person<i>@example.com), synced by the engine."""
    make_model(warehouse, people)
    result = finish(start_sync(people_spec("cordial"), warehouse, env=env))
    if result.get("status") != "succeeded":
        raise SystemExit(f"cordial contacts: {result}")


def measure(destination: str, url: str, work: Path, args, env: dict) -> dict:
    from bench import admin  # bench/bench.py

    admin(url, "reset")
    warehouse = work / f"events_{destination}.duckdb"
    spec = event_spec(destination)
    if destination == "cordial":
        contacts(url, warehouse, args.people, env)
    make_events(warehouse, spec, args.events, 0, args.people)
    result = finish(start_sync(spec, warehouse, "--allow-large-change", env=env), timeout=6 * 3600)
    if (result.get("status"), result.get("acked_add")) != ("succeeded", args.events):
        raise SystemExit(f"{destination}: {result}")
    make_events(warehouse, spec, args.ceiling_events, 10_000_000, args.people)
    requests = prebuilt(spec, warehouse)
    ceiling = asyncio.run(hammer(destination, url, requests, args.concurrency))
    engine = result["rows_per_s"]
    out = {"events": args.events, "columns": len(spec.columns), "engine_events_per_s": round(engine),
           "engine_requests": result["requests"], "engine_seconds": result["duration_s"],
           "events_per_request": round(args.events / max(result["requests"], 1), 1),
           "ceiling_events": args.ceiling_events, "ceiling_requests": len(requests),
           "ceiling_events_per_s": round(ceiling), "engine_vs_ceiling": round(engine / ceiling, 3)}
    out["meets_target"] = out["engine_vs_ceiling"] >= TARGET
    for path in work.glob(f"events_{destination}.duckdb*"):
        path.unlink()
    admin(url, "reset")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--ceiling-events", type=int, default=200_000, help="events sent by the minimal client")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--destinations", default="customerio,talon_one,cordial")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "target": TARGET,
              "destinations": {}}
    with tempfile.TemporaryDirectory(prefix="relay-bench-events-") as tmp, EmulatorProcess() as emulators:
        env = {"RELAY_DESTINATIONS": "emulator", "RELAY_DATA_DIR": str(Path(tmp) / "data"),
               "RELAY_CONCURRENCY": str(args.concurrency), **destination_env(emulators.urls), **BUDGETS_OUT_OF_REACH}
        os.environ.update(env)
        print(f"{'destination':<12} {'events':>10} {'engine ev/s':>12} {'requests':>10} {'ev/request':>11} "
              f"{'ceiling ev/s':>13} {'ratio':>6}", flush=True)
        for name in [n for n in args.destinations.split(",") if n]:
            started = time.monotonic()
            o = report["destinations"][name] = measure(name, emulators.urls[name], Path(tmp), args, env)
            o["wall_s"] = round(time.monotonic() - started, 1)
            print(f"{name:<12} {o['events']:>10,} {o['engine_events_per_s']:>12,} {o['engine_requests']:>10,} "
                  f"{o['events_per_request']:>11,} {o['ceiling_events_per_s']:>13,} {o['engine_vs_ceiling']:>6.2f}"
                  f"{'' if o['meets_target'] else '  below ' + str(TARGET)}", flush=True)
    (args.out / "events.json").write_text(json.dumps(report, indent=2))
    print(f"results in {args.out / 'events.json'}")
    return 0 if all(o["meets_target"] for o in report["destinations"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
