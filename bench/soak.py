"""Fault soak and crash recovery of the sync engine at scale, against the emulators in a process of their own.

    .venv/bin/python bench/soak.py [--rows 200000] [--kills 24] [--crash-rows 50000] [--failpoints 2]
                                   [--only soak|crash] [--seed 7] [--out artifacts/soak]

soak   For each destination (Customer.io people attributes, Cordial contacts, Talon.One customer profiles):
       --rows rows in a sync model of a fresh DuckDB warehouse, synced while the emulator injects 10% 5xx,
       2% dropped connections, stalls longer than the client's timeout, latency spikes, and 429 bursts (a
       low rate limit switched on and off through POST /_emulator/faults while the sync runs). Runs are
       repeated until one succeeds (at most --max-runs). Then a second phase: 10% of the rows change, 5%
       clear an attribute, 5% leave the model (exits), synced under the same faults. After each phase:
       the destination's state (GET /_emulator/state) must equal the model exactly, the ledger must add
       up (acknowledged totals, sync_state rows, deliveries, no rejection left), and no row may be lost.
       Requests made are compared with the fault-free minimum, computed from the adapter's own batching:
       the API's (every change packed by the adapter at once, i.e. ceil(N / what fits in a request)) and
       the engine's (the same per engine chunk of sinks.engine.Tuning.chunk_rows rows).
crash  For each destination: --crash-rows rows, synced by worker processes that are SIGKILLed at random
       points (--kills in all, spread over the destinations): 20% at a random time from start (start-up,
       plan, setup, first requests), the rest once a random number of rows reached the destination, early
       in the run or anywhere in it; plus --failpoints crashes per destination through the engine's
       failpoint --failpoint after_ack:N (the process dies right after a destination acknowledged a
       batch, before its state is written). Light faults (5% 5xx, 1% drops); the batched APIs run with
       --crash-latency-ms per request and --crash-concurrency, so that a run of a few dozen requests can be
       cut at many points. After every crash: no sync_state row may claim a value the destination does not
       hold. Finally a clean run must converge to the model exactly, every row recorded as added once
       (other deliveries only re-assertions of writes of unknown fate).

Cordial's per-contact API is used (one request per contact; bulk imports are off), with the emulator's
latency at 0 and a client concurrency of --cordial-concurrency so that 200k contacts take minutes.
Prints a summary table per mode and writes --out/results.json. Exits 1 when any check failed.
Not collected by pytest (it lives outside tests/).
"""

import argparse
import os
import platform
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/support

from support.crash_checks import expected_of, mismatched, overclaimed  # noqa: E402
from support.emulators import NAMES, EmulatorProcess  # noqa: E402
from support.harnesses import admin, attach, credentials, people_rows  # noqa: E402
from support.project import ROOT  # noqa: E402
from support.sync_process import CRASH_EXIT, finish, start_sync  # noqa: E402
from support.warehouse import query  # noqa: E402
from sinks import destinations  # noqa: E402
from sinks.engine import SyncRun, Tuning, connect  # noqa: E402
from soak_support import (  # noqa: E402
    CLIENT_TIMEOUT_S, LABELS, RESEND_UNCONFIRMED_S, SERVER_ERRORS, Bursts, common_arguments, conclude, log,
    soak_faults, spread, stats_delta, summary, table,
)


# ------------------------------------------------------------------------------------------ model and oracle
def churn(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Phase 2: 10% of rows change a number, 5% clear a string, 5% leave the model. (kept, removed)."""
    kept, removed = [], []
    for i, row in enumerate(rows):
        if i % 20 == 11:
            removed.append(row)
        elif i % 10 == 3:
            kept.append({**row, "orders_count": row["orders_count"] + 1000})
        elif i % 20 == 7:
            kept.append({**row, "vip_tier": None})
        else:
            kept.append(row)
    return kept, removed


def expected_state(h, kept: list[dict], removed: list[dict] = ()) -> dict[str, dict]:
    """What the destination must hold: the model's rows, and each exited row as the destination clears it."""
    expected = {h.id_of(row): expected_of(h, row) for row in kept}
    for row in removed:
        expected[h.id_of(row)] = h.exited(row)
    return expected


def fault_free_requests(h, warehouse: Path) -> dict:
    """The requests a fault-free run needs for the pending changes, from the engine's plan and the adapter's
    own batching: packed all at once (the API's minimum) and per engine chunk (this engine's minimum)."""
    destination = destinations.build(h.name)
    run = SyncRun(h.people, destination, warehouse, apply=False, allow_large_change=True)
    run.con = connect(warehouse)
    try:
        run._plan()  # the engine's own diff, and below its own chunking
        delivery = run._delivery()
        changes, engine = [], 0
        for chunk, _ in delivery.reader.chunks(None):  # without the bulk path: every change through batches()
            chunk = [c for c in chunk if not delivery.nothing_to_send(c)]
            changes += chunk
            engine += sum(b.request is not None for b in destination.batches(h.people, chunk))
        api = sum(b.request is not None for b in destination.batches(h.people, changes))
    finally:
        run.con.close()
    return {"planned": run.result.planned, "changes": len(changes), "api_minimum": api, "engine_minimum": engine}


def ledger(h, warehouse: Path) -> dict:
    """What the ledger says: runs, state rows, deliveries and rejections still open (a rejected row whose
    state was not written since)."""
    runs = query(warehouse, """
        select run_id, status, acked_add, acked_change, acked_remove, rejected, unsent, requests, retries, throttled
        from relay.sync_runs where sync_name = ? and mode = 'apply' order by started_at""", [h.people.name])
    open_rejections = query(warehouse, """
        select count(*) from relay.sync_rejections r where sync_name = $s and not exists (
            select 1 from relay.sync_state s where s.sync_name = $s and s.record_key = r.record_key
              and s.last_synced_at >= r.rejected_at)""", {"s": h.people.name})[0][0]
    # Re-assertions of writes of unknown fate are deliveries too: changes that send every attribute.
    deliveries = query(warehouse, """
        select count(*), count(distinct record_key), count(*) filter (where kind = 'add'),
               count(distinct record_key) filter (where kind = 'add'),
               count(*) filter (where kind = 'change' and len(fields) = $attributes)
        from relay.sync_deliveries where sync_name = $s""",
        {"s": h.people.name, "attributes": len(h.people.attribute_columns)})[0]
    return {
        "runs": [dict(zip(("run_id", "status", "acked_add", "acked_change", "acked_remove", "rejected", "unsent",
                           "requests", "retries", "throttled"), r)) for r in runs],
        "state_rows": query(warehouse, "select count(*) from relay.sync_state where sync_name = ?", [h.people.name])[0][0],
        "deliveries": deliveries[0], "delivered_keys": deliveries[1], "adds": deliveries[2],
        "added_keys": deliveries[3], "reassertions": deliveries[4],
        "rejections_total": query(warehouse, "select count(*) from relay.sync_rejections")[0][0],
        "rejections_open": open_rejections,
        "abandoned": query(warehouse, "select count(*) from relay.sync_runs where status = 'abandoned'")[0][0],
    }


# ------------------------------------------------------------------------------------------ soak
def soak_phase(h, warehouse: Path, phase: str, expected: dict, env: dict, args, seed: int) -> dict:
    minimum = fault_free_requests(h, warehouse)
    faults = soak_faults(minimum["api_minimum"], seed)
    admin(h, "faults", faults)
    before = h.stats()
    bursts = Bursts(h, random.Random(seed))
    started = time.monotonic()
    bursts.start()
    runs, observed = [], Counter()
    try:
        for attempt in range(args.max_runs):
            result = finish(start_sync(h.people, warehouse, env=env, slow_s=faults["spike_ms"] / 1000 * 0.9))
            observed.update(result.get("observed", {}))
            run = summary(result)
            runs.append(run)
            log(f"  {h.name} {phase} run {attempt + 1}: {run['status'] or 'exit ' + str(run['exit'])} acked "
                f"{run['acked']:,} of {run['planned']:,} in {run['duration_s'] or 0:.0f}s ({run['requests'] or 0:,} "
                f"requests, {run['retries'] or 0:,} retries) {run['message'] or run['error'] or ''}")
            if result.get("status") == "succeeded":
                # Converged once no row waits to be re-asserted after a write of unknown fate.
                pending, due = query(warehouse, "select count(*), max(resend_after) from relay.sync_unconfirmed "
                                                "where sync_name = ?", [h.people.name])[0]
                if not pending:
                    break
                wait = (due - datetime.now(timezone.utc).replace(tzinfo=None)).total_seconds()
                log(f"  {h.name} {phase}: {pending:,} rows of unknown fate; re-asserted by a run in {max(wait, 0):.0f}s")
                time.sleep(max(wait, 0) + 0.5)
    finally:
        toggles = bursts.finish()
        admin(h, "faults", {k: 0 for k in ("error_rate", "drop_rate", "timeout_rate", "spike_rate")})
    seconds = time.monotonic() - started
    delta = stats_delta(h.stats(), before)
    held = h.held()
    diff = mismatched(expected, held)
    books = ledger(h, warehouse)
    phase_runs = books["runs"][-len(runs):]
    acked = {k: sum(r[k] or 0 for r in phase_runs) for k in ("acked_add", "acked_change", "acked_remove")}
    acked_ever = sum((r["acked_add"] or 0) + (r["acked_change"] or 0) + (r["acked_remove"] or 0) for r in books["runs"])
    data_requests = sum(n for route, n in delta["by_route"].items() if route in h.data_routes)
    lost = len(diff["missing"]) + len(diff["wrong"])
    checks = {
        "converged": bool(runs) and runs[-1].get("status") == "succeeded",
        "destination_equals_model": not any(diff.values()),
        "rows_lost_0": lost == 0,
        # Each planned row acknowledged once, plus the re-assertions after writes of unknown fate.
        "acked_equals_planned": sum(acked.values()) == minimum["planned"] + sum(r["resent"] or 0 for r in runs),
        "state_rows_equal_model": books["state_rows"] == len(h.model_ids),
        "one_delivery_per_ack": books["deliveries"] == acked_ever,
        "no_rejection_open": books["rejections_open"] == 0,
        "state_never_overclaims": not overclaimed(h, warehouse, held),
    }
    return {
        "destination": h.name, "phase": phase, "rows": len(h.model_ids), "changes": minimum["planned"],
        "runs": runs, "seconds": round(seconds, 1),
        "requests": {"total": delta["requests"], "data": data_requests, "api_minimum": minimum["api_minimum"],
                     "engine_minimum": minimum["engine_minimum"],
                     "vs_api_minimum": round(data_requests / max(minimum["api_minimum"], 1), 2),
                     "by_route": delta["by_route"], "by_status": delta["by_status"]},
        "faults_configured": faults,
        "faults_injected": {
            "5xx": sum(delta["by_status"].get(s, 0) for s in SERVER_ERRORS),
            "dropped": delta["by_status"].get("dropped", 0),
            "429": delta["by_status"].get("429", 0),
            "429_bursts": toggles,
            "client_timeouts": observed.get("client_timeouts", 0),
            "latency_spikes": observed.get("slow_answers", 0),
            "connection_errors_seen_by_client": observed.get("connections_dropped", 0),
        },
        "ledger": {**books, "runs": len(books["runs"]), "acked": acked},
        "rows_lost": lost, "mismatch": {k: (len(v), v[:5]) for k, v in diff.items()},
        "checks": checks,
    }


def soak(destination: str, url: str, work: Path, args, seed: int) -> list[dict]:
    h = attach(destination, url)
    h.data_routes = {h.items_route, "PUT /v2/contacts/{key}"}
    admin(h, "reset", {})
    warehouse = work / f"soak_{destination}.duckdb"
    env = {"RELAY_CONCURRENCY": str(args.cordial_concurrency if destination == "cordial" else args.concurrency),
           "RELAY_RESEND_UNCONFIRMED_S": str(RESEND_UNCONFIRMED_S)}
    os.environ.update({**h.env(), **env})
    rows = people_rows(args.rows)
    h.write_people(warehouse, rows)
    h.model_ids = {h.id_of(r) for r in rows}
    log(f"soak {destination}: {len(rows):,} rows")
    first = soak_phase(h, warehouse, "initial", expected_state(h, rows), env, args, seed)
    kept, removed = churn(rows)
    h.write_people(warehouse, kept)
    h.model_ids = {h.id_of(r) for r in kept}
    log(f"soak {destination}: churn, {len(kept):,} rows ({len(removed):,} left the model)")
    second = soak_phase(h, warehouse, "churn", expected_state(h, kept, removed), env, args, seed + 100)
    for path in work.glob(f"soak_{destination}.duckdb*"):
        path.unlink()
    return [first, second]


# ------------------------------------------------------------------------------------------ crash
def crash(destination: str, url: str, work: Path, args, sigkills: int, seed: int) -> dict:
    h = attach(destination, url)
    rng = random.Random(seed)
    admin(h, "reset", {})
    warehouse = work / f"crash_{destination}.duckdb"
    # Batched APIs: fewer requests in flight, each slower, so that a run of a few dozen requests lasts long
    # enough to be cut at many different points (some flushed to state, some acknowledged and not yet).
    batched = destination != "cordial"
    env = {"RELAY_CONCURRENCY": str(args.crash_concurrency if batched else args.cordial_concurrency),
           "RELAY_RESEND_UNCONFIRMED_S": str(RESEND_UNCONFIRMED_S)}
    os.environ.update({**h.env(), **env})
    n = args.crash_rows
    rows = people_rows(n)
    h.write_people(warehouse, rows)
    connect(warehouse).close()  # the ledger exists, as after any earlier run, even if the first kill is early
    expected = expected_state(h, rows)
    admin(h, "faults", {"error_rate": 0.05, "drop_rate": 0.01, "latency_ms": args.crash_latency_ms if batched else 0,
                        "seed": seed})
    rounds = ["sigkill"] * sigkills + ["failpoint"] * args.failpoints
    rng.shuffle(rounds)
    log(f"crash {destination}: {n:,} rows, {sigkills} SIGKILLs and {args.failpoints} failpoint crashes")
    started = time.monotonic()
    kills, violations = [], []
    for i, kind in enumerate(rounds):
        state_rows = query(warehouse, "select count(*) from relay.sync_state")[0][0] if i else 0
        remaining, left = n - state_rows, len(rounds) - i
        items_before = h.items()
        record = {"round": i + 1, "kind": kind, "state_rows_before": state_rows}
        if kind == "failpoint":
            # Die after a random acknowledged batch, spread like the SIGKILLs over what is left to send.
            batches = fault_free_requests(h, warehouse)["engine_minimum"]
            record["after_ack"] = rng.randint(1, max(1, 2 * batches // (left + 1)))
            process = start_sync(h.people, warehouse, "--failpoint", f"after_ack:{record['after_ack']}", env=env)
            outcome = finish(process, timeout=600)
        else:
            process = start_sync(h.people, warehouse, env=env)
            t0 = time.monotonic()
            draw = rng.random()
            if draw < 0.2:  # a random moment from start: start-up, plan, setup or the first requests
                record["at_s"] = round(rng.uniform(0.05, 2.0), 3)
                while process.poll() is None and time.monotonic() - t0 < record["at_s"]:
                    time.sleep(0.005)
            else:  # after a random number of rows reached the destination: early in the run (spread so that
                # the rounds left still find work), or anywhere in it
                top = 2 * remaining // (left + 1) if draw < 0.6 else remaining * 9 // 10
                record["after_items"] = rng.randint(1, max(1, top))
                while process.poll() is None and h.items() - items_before < record["after_items"]:
                    time.sleep(0.01)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            outcome = finish(process, timeout=600)
            record["killed_at_s"] = round(time.monotonic() - t0, 2)
        record["exit"] = outcome["exit"]
        held = h.held()
        bad = overclaimed(h, warehouse, held)
        record.update({"state_rows_after": query(warehouse, "select count(*) from relay.sync_state")[0][0],
                       "held_rows": len(held), "items_received": h.items() - items_before, "overclaimed": len(bad)})
        record["acked_not_recorded"] = record["held_rows"] - record["state_rows_after"]
        kills.append(record)
        if bad:
            violations.append({"round": i + 1, "identifiers": bad[:10], "count": len(bad)})
        log(f"  {destination} round {i + 1}/{len(rounds)} {kind}: exit {outcome['exit']}, state {record['state_rows_after']:,}"
            f", destination {len(held):,}, overclaimed {len(bad)}")
        if outcome["exit"] == 0:
            log(f"  {destination}: the sync finished before it could be killed; no further rounds")
            break
    admin(h, "faults", {"error_rate": 0, "drop_rate": 0, "latency_ms": 0})
    final_runs = []
    for _ in range(args.max_runs):
        result = finish(start_sync(h.people, warehouse, env=env))
        final_runs.append(summary(result))
        log(f"  {destination} final run: {result.get('status')}, resent {final_runs[-1]['acked']:,} rows")
        if result.get("status") == "succeeded":
            break
    seconds = time.monotonic() - started
    held = h.held()
    diff = mismatched(expected, held)
    books = ledger(h, warehouse)
    real_sigkills = sum(k["kind"] == "sigkill" and k["exit"] == -signal.SIGKILL for k in kills)
    failpoint_crashes = sum(k["kind"] == "failpoint" and k["exit"] == CRASH_EXIT for k in kills)
    lost = len(diff["missing"]) + len(diff["wrong"])
    checks = {
        "no_overclaim_after_any_crash": not violations,
        "converged": final_runs[-1].get("status") == "succeeded",
        "destination_equals_model": not any(diff.values()),
        "rows_lost_0": lost == 0,
        "state_rows_equal_model": books["state_rows"] == n,
        # Each row recorded as added once; any other delivery is a re-assertion of a write of unknown fate.
        "each_row_recorded_added_once": (books["adds"], books["added_keys"]) == (n, n)
        and books["deliveries"] == n + books["reassertions"],
        "sigkills_as_planned": real_sigkills == sigkills,
        "failpoints_hit": failpoint_crashes == args.failpoints,
        "window_observed": any(k["kind"] == "failpoint" and k["acked_not_recorded"] > 0 for k in kills)
        if args.failpoints else True,
    }
    for path in work.glob(f"crash_{destination}.duckdb*"):
        path.unlink()
    return {
        "destination": destination, "rows": n, "sigkills": real_sigkills, "failpoint_crashes": failpoint_crashes,
        "rounds": kills, "final_runs": final_runs, "seconds": round(seconds, 1),
        "items_received": h.items(),
        "abandoned_runs": books["abandoned"], "overclaim_violations": violations, "rows_lost": lost,
        "max_acked_not_recorded": max((k["acked_not_recorded"] for k in kills), default=0),
        "resend_factor": round(h.items() / n, 2),
        "mismatch": {k: (len(v), v[:5]) for k, v in diff.items()}, "checks": checks,
    }


# ------------------------------------------------------------------------------------------ report
def soak_table(results: list[dict]) -> str:
    rows = []
    for r in results:
        f, q = r["faults_injected"], r["requests"]
        rows.append([LABELS[r["destination"]], r["phase"], r["rows"], r["changes"], len(r["runs"]), q["data"],
                     f"{q['api_minimum']:,}/{q['engine_minimum']:,}", f"{q['vs_api_minimum']:.2f}x", f["5xx"],
                     f["dropped"], f"{f['429']:,} ({f['429_bursts']})", f["client_timeouts"], f["latency_spikes"],
                     r["rows_lost"], f"{r['seconds']:.0f}s", "ok" if all(r["checks"].values()) else "FAIL"])
    return table(["destination", "phase", "rows", "changes", "runs", "requests", "minimum api/engine", "ratio",
                  "5xx", "drops", "429 (bursts)", "timeouts", "spikes", "lost", "time", "checks"], rows)


def crash_table(results: list[dict]) -> str:
    rows = [[LABELS[r["destination"]], r["rows"], r["sigkills"], r["failpoint_crashes"], r["abandoned_runs"],
             len(r["overclaim_violations"]), r["max_acked_not_recorded"],
             f"{r['items_received']:,} ({r['resend_factor']:.2f}x)",
             len(r["final_runs"]), r["rows_lost"], f"{r['seconds']:.0f}s",
             "ok" if all(r["checks"].values()) else "FAIL"] for r in results]
    return table(["destination", "rows", "SIGKILLs", "failpoints", "abandoned runs", "overclaims",
                  "max held, not in state", "rows received (x rows)", "final runs", "lost", "time", "checks"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="soak: rows per destination")
    parser.add_argument("--crash-rows", type=int, default=50_000, help="crash: rows per destination")
    parser.add_argument("--crash-concurrency", type=int, default=4, help="crash: concurrency (Customer.io, Talon.One)")
    parser.add_argument("--crash-latency-ms", type=float, default=800,
                        help="crash: emulator latency per request (Customer.io, Talon.One)")
    parser.add_argument("--kills", type=int, default=24, help="crash: SIGKILLs in all, spread over the destinations")
    parser.add_argument("--failpoints", type=int, default=2, help="crash: failpoint crashes per destination")
    parser.add_argument("--only", choices=("soak", "crash"))
    common_arguments(parser, NAMES, ROOT, max_runs=6)
    args = parser.parse_args()
    names = [n for n in args.destinations.split(",") if n]
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    report = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": {
                  "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
              "client_timeout_s": CLIENT_TIMEOUT_S, "engine_chunk_rows": Tuning().chunk_rows}
    with tempfile.TemporaryDirectory(prefix="relay-soak-") as tmp:
        work = Path(tmp)
        os.environ.update({"RELAY_DATA_DIR": str(work / "data"), "RELAY_DESTINATIONS": "emulator"})
        emulator_log = args.out / "emulators.log"
        emulator_log.unlink(missing_ok=True)
        faults = ("--fault-5xx", "0.1", "--fault-drop", "0.02", "--timeout-s", str(CLIENT_TIMEOUT_S + 5),
                  "--spike-ms", "2000", "--seed", str(args.seed))
        with EmulatorProcess(*faults, env=credentials(), log=emulator_log) as emulators:
            report["emulator_pid"] = emulators.process.pid
            if args.only in (None, "soak"):
                report["soak"] = []
                for i, name in enumerate(names):
                    report["soak"] += soak(name, emulators.urls[name], work, args, args.seed + i)
                print("\nFault soak\n" + soak_table(report["soak"]), flush=True)
            if args.only in (None, "crash"):
                report["crash"] = []
                per = spread(args.kills, len(names))
                for i, name in enumerate(names):
                    report["crash"].append(crash(name, emulators.urls[name], work, args, per[i], args.seed + 10 + i))
                print("\nCrash recovery\n" + crash_table(report["crash"]), flush=True)
    crashes = [{**r, "phase": "crash"} for r in report.get("crash", [])]
    return conclude(report, report.get("soak", []) + crashes, started, args.out / "results.json")

if __name__ == "__main__":
    raise SystemExit(main())
