"""Events phase of the fault soak: events syncs under faults, 429 bursts and SIGKILLs, each event landing once.

    .venv/bin/python bench/soak_events.py [--events 100000] [--kills 12] [--people 10000]
                                          [--destinations customerio,talon_one,cordial] [--seed 7]
                                          [--out artifacts/soak]

For each destination: the shipped events sync's declaration (sync_<destination>__events, its columns) over
--events synthetic events (bench/bench_events.py) in a fresh DuckDB warehouse, every one in the backfill;
Cordial's --people contacts are synced first, fault-free. Then, while the emulator injects 10% 5xx, 2%
dropped connections, stalls longer than the client's timeout, latency spikes and 429 bursts, syncs are
SIGKILLed (--kills in all, spread over the destinations: 20% at a random time from start, the rest once a
random number of events reached the destination), and after every kill no event the ledger records as sent
may be missing at the destination. Then runs are repeated until one succeeds with no event of unknown fate
waiting to be settled. Reported: events at the destination (distinct) / events in the model, duplicates
(copies beyond the first), events held (Cordial: unknown fate, never resent), Customer.io's dropped
repeats, and the checks: none duplicated; every event at the destination is in the model; every event the
ledger records as sent is at the destination, once delivered; every event of the model is sent or held;
Customer.io and Talon.One (which dedupe, or can be asked) hold every event of the model.
Prints a table and writes --out/events.json. Exits 1 when any check failed. Not collected by pytest.
"""

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/support

from bench_events import contacts, event_spec, make_events, prebuilt  # noqa: E402
from soak_support import (  # noqa: E402
    RESEND_UNCONFIRMED_S, SERVER_ERRORS, Bursts, common_arguments, conclude, log, soak_faults, spread, stats_delta,
    summary, table,
)
from support.emulators import NAMES, EmulatorProcess  # noqa: E402
from support.harnesses import admin, attach, credentials  # noqa: E402
from support.project import ROOT  # noqa: E402
from support.sync_process import finish, start_sync  # noqa: E402
from support.warehouse import query  # noqa: E402
from sinks.engine import connect  # noqa: E402

ROUTES = {"customerio": "POST /api/v2/batch", "talon_one": "POST /v2/events", "cordial": "POST /v2/contactactivities"}
LABELS = {"customerio": "Customer.io events", "talon_one": "Talon.One custom events",
          "cordial": "Cordial contact activities"}
DEDUPES = {"customerio", "talon_one"}  # by id, or by Relay looking its events up: every event must land


def landed(h) -> list[str]:
    """The key (bench:<i>) of every event the destination holds, repeats included."""
    state = h.state()
    if h.name == "talon_one":
        return [e["attributes"]["relay_event_id"] for e in state["events"]]
    if h.name == "cordial":
        return [f"bench:{a['properties']['order_id']}" for a in state["activities"]]
    return [f"bench:{e['attributes']['order_id']}" for e in state["event_log"]]


def ledger(spec, warehouse: Path) -> dict:
    keys = lambda sql: {r[0] for r in query(warehouse, sql, [spec.name])}  # noqa: E731
    deliveries = query(warehouse, "select count(*), count(distinct record_key) from relay.sync_deliveries "
                                  "where sync_name = ?", [spec.name])[0]
    return {"state": keys("select record_key from relay.sync_state where sync_name = ?"),
            "held": keys("select record_key from relay.sync_skipped where sync_name = ? and reason like 'unknown fate%'"),
            "skipped": keys("select record_key from relay.sync_skipped where sync_name = ?"),
            "in_flight": keys("select record_key from relay.sync_in_flight where sync_name = ?"),
            "deliveries": deliveries[0], "delivered_keys": deliveries[1]}


def kill_rounds(h, spec, warehouse: Path, env: dict, kills: int, events: int, rng: random.Random) -> list[dict]:
    """SIGKILL `kills` syncs; after each, no event recorded as sent may be missing at the destination."""
    rounds = []
    for i in range(kills):
        books = ledger(spec, warehouse) if i else {"state": (), "in_flight": ()}
        sent = len(books["state"]) + len(books["in_flight"])  # events in flight wait for their window: not sendable
        before = h.stats()["items"].get(ROUTES[h.name], 0)
        process, t0, draw = start_sync(spec, warehouse, "--allow-large-change", env=env), time.monotonic(), rng.random()
        record = {"round": i + 1, "state_before": len(books["state"])}
        if draw < 0.2:  # start-up, plan, journal or the first requests
            record["at_s"] = round(rng.uniform(0.05, 2.0), 3)
            while process.poll() is None and time.monotonic() - t0 < record["at_s"]:
                time.sleep(0.005)
        else:  # spread so that the rounds left still find work
            record["after_items"] = rng.randint(1, max(1, 2 * (events - sent) // (kills - i + 1)))
            while process.poll() is None and h.stats()["items"].get(ROUTES[h.name], 0) - before < record["after_items"]:
                time.sleep(0.02)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        record["exit"] = finish(process, timeout=600)["exit"]
        books, held = ledger(spec, warehouse), set(landed(h))
        record.update({"state_after": len(books["state"]), "at_destination": len(held),
                       "overclaimed": len(books["state"] - held), "in_flight": len(books["in_flight"])})
        log(f"  {h.name} kill {i + 1}/{kills}: exit {record['exit']}, state {record['state_after']:,}, destination "
            f"{len(held):,}, in flight {record['in_flight']:,}, overclaimed {record['overclaimed']}")
        rounds.append(record)
    return rounds


def converge(h, spec, warehouse: Path, env: dict, max_runs: int) -> list[dict]:
    """Runs until one succeeds with no event of unknown fate left to settle (each waits its window)."""
    runs = []
    for attempt in range(max_runs):
        result = finish(start_sync(spec, warehouse, "--allow-large-change", env=env), timeout=3600)
        runs.append({**summary(result), "unknown_fate_waiting": result.get("unknown_fate_waiting")})
        pending = ledger(spec, warehouse)["in_flight"]
        log(f"  {h.name} run {attempt + 1}: {result.get('status') or 'exit ' + str(result['exit'])}, acked "
            f"{runs[-1]['acked']:,} of {runs[-1]['planned']:,}, {len(pending):,} of unknown fate pending "
            f"{runs[-1]['message'] or runs[-1]['error'] or ''}")
        if result.get("status") == "succeeded" and not pending:
            break
        if pending:
            time.sleep(RESEND_UNCONFIRMED_S + 1)
    return runs


def phase(name: str, url: str, work: Path, args, kills: int, seed: int) -> dict:
    h, rng = attach(name, url), random.Random(seed)
    admin(h, "reset", {})
    warehouse, spec = work / f"events_{name}.duckdb", event_spec(name)
    env = {"RELAY_CONCURRENCY": str(args.cordial_concurrency if name == "cordial" else args.concurrency),
           "RELAY_RESEND_UNCONFIRMED_S": str(RESEND_UNCONFIRMED_S)}
    os.environ.update({**h.env(), **env})
    if name == "cordial":
        contacts(url, warehouse, args.people, env)
    make_events(warehouse, spec, args.events, 0, args.people)
    connect(warehouse).close()  # the ledger exists even if the first kill comes before the engine made it
    faults = soak_faults(len(prebuilt(spec, warehouse)), seed)
    log(f"events {name}: {args.events:,} events, {kills} SIGKILLs under faults")
    admin(h, "faults", faults)
    before, bursts, started = h.stats(), Bursts(h, rng), time.monotonic()
    bursts.start()
    try:
        rounds = kill_rounds(h, spec, warehouse, env, kills, args.events, rng)
        runs = converge(h, spec, warehouse, env, args.max_runs)
    finally:
        toggles = bursts.finish()
        admin(h, "faults", {k: 0 for k in ("error_rate", "drop_rate", "timeout_rate", "spike_rate")})
    seconds = time.monotonic() - started
    after = h.stats()
    delta, keys, books = stats_delta(after, before), landed(h), ledger(spec, warehouse)
    flags = Counter(after.get("flags", {})) - Counter(before.get("flags", {}))
    model, at = {f"bench:{i}" for i in range(args.events)}, set(keys)
    copies = Counter(keys)
    checks = {
        "converged": bool(runs) and runs[-1]["status"] == "succeeded" and not books["in_flight"],
        "sigkills_as_planned": sum(r["exit"] == -signal.SIGKILL for r in rounds) == kills,
        "no_overclaim_after_any_kill": not any(r["overclaimed"] for r in rounds),
        "no_duplicates": len(keys) == len(at),
        "destination_within_model": at <= model,
        "sent_are_at_destination": books["state"] <= at,
        "each_sent_event_delivered_once": books["deliveries"] == books["delivered_keys"] == len(books["state"]),
        "every_event_sent_or_held": books["state"] | books["held"] == model and not books["state"] & books["skipped"],
        "every_event_landed": at == model if name in DEDUPES else True,
    }
    for path in work.glob(f"events_{name}.duckdb*"):
        path.unlink()
    return {
        "destination": name, "events": args.events, "columns": len(spec.columns), "sigkills": kills,
        "rounds": rounds, "runs": runs, "seconds": round(seconds, 1),
        "at_destination": len(at), "ratio": round(len(at) / args.events, 4),
        "duplicates": sum(n - 1 for n in copies.values()), "held": len(books["held"]),
        "held_at_destination": len(books["held"] & at), "state_rows": len(books["state"]),
        "repeats_dropped_by_destination": flags["duplicate_events_dropped"],
        "requests": delta["requests"], "by_route": delta["by_route"],
        "faults_configured": faults,
        "faults_injected": {"5xx": sum(delta["by_status"].get(s, 0) for s in SERVER_ERRORS),
                            "dropped": delta["by_status"].get("dropped", 0), "429": delta["by_status"].get("429", 0),
                            "429_bursts": toggles},
        "checks": checks,
    }


def events_table(results: list[dict]) -> str:
    rows = [[LABELS[r["destination"]], r["events"], r["sigkills"], len(r["runs"]), r["at_destination"],
             f"{r['ratio']:.4f}", r["duplicates"], f"{r['held']:,} ({r['held_at_destination']:,} landed)",
             r["repeats_dropped_by_destination"], r["faults_injected"]["5xx"], r["faults_injected"]["dropped"],
             f"{r['faults_injected']['429']:,} ({r['faults_injected']['429_bursts']})", f"{r['seconds']:.0f}s",
             "ok" if all(r["checks"].values()) else "FAIL"] for r in results]
    return table(["destination", "events", "SIGKILLs", "final runs", "at destination", "ratio", "duplicates",
                  "held (of which landed)", "repeats dropped", "5xx", "drops", "429 (bursts)", "time", "checks"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per destination")
    parser.add_argument("--kills", type=int, default=12, help="SIGKILLs in all, spread over the destinations")
    parser.add_argument("--people", type=int, default=10_000, help="people the events are of")
    common_arguments(parser, NAMES, ROOT, max_runs=8)
    args = parser.parse_args()
    names = [n for n in args.destinations.split(",") if n]
    per = spread(args.kills, len(names))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    report = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join([Path(sys.executable).name, *sys.argv]), "results": []}
    with tempfile.TemporaryDirectory(prefix="relay-soak-events-") as tmp:
        work = Path(tmp)
        os.environ.update({"RELAY_DATA_DIR": str(work / "data"), "RELAY_DESTINATIONS": "emulator"})
        with EmulatorProcess(env=credentials(), log=args.out / "emulators_events.log") as emulators:
            for i, name in enumerate(names):
                report["results"].append(phase(name, emulators.urls[name], work, args, per[i], args.seed + 20 + i))
    print("\nEvents: each lands once\n" + events_table(report["results"]), flush=True)
    return conclude(report, report["results"], started, args.out / "events.json")

if __name__ == "__main__":
    raise SystemExit(main())
