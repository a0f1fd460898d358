"""make bench: where the time and memory go, at scale, with the ratios that matter measured in one run.

    .venv/bin/python bench/bench.py [--scales 100000,1000000] [--out artifacts/bench] [--sync-rows 300000]
                                    [--rss-rows 1000000] [--rss-big-rows 3000000] [--rounds 3] [--latency-ms 20]
                                    [--rate 200]

Per scale (a fresh warehouse each): sample data; a full `dbt build`; the first sync of every model
(requests, rows/s per destination); the daily job on unchanged data (dbt + diff + sync: the full
pipeline; it must send nothing); one hour of activity appended, then the frequent-path job. The jobs are
the Dagster jobs the schedules run (`relay run`). For each job, its Dagster step times, and the span from
the run's start to the end of its last sync step: dbt + diff + sync, i.e. for the frequent path the
purchase-to-destination latency. The frequent/full ratio compares those spans; both jobs then also refresh
the stakeholder copy (a fixed cost, reported with the whole jobs' times).

Then, once: memory, on the shipped people model of each destination at its real width (bench/real_width.py
copies a small build's rows with fresh keys): --rss-rows rows synced first, again unchanged, then with 1%
changed (diff time and peak RSS of each sync process), and Customer.io's at --rss-big-rows; per destination, the engine's first-sync rows/s (--sync-rows) against the
emulator's ceiling (the same emulator fed pre-built requests by a minimal client; the median of --rounds
paired measurements) and against a naive loop of one
request per row at --latency-ms; and a sync under an emulator rate limit of --rate requests/s.

Writes results.json, results.md and cost_vs_scale.png (if matplotlib is installed) to --out. Every
emulator runs in its own process, so the client side is measured as it would run against a vendor.
Not collected by pytest (it lives outside tests/).
"""

import argparse
import asyncio
import base64
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/support

from bench_destinations import BUDGETS_OUT_OF_REACH, make_model, naive, spec  # noqa: E402
from support.emulators import EMULATOR_CREDENTIALS as KEYS  # noqa: E402
from support.emulators import EmulatorProcess, destination_env  # noqa: E402
from support import peak  # noqa: E402
from support.sync_process import sync_command  # noqa: E402

import real_width  # noqa: E402
from relay import config  # noqa: E402

RELAY = str(Path(sys.executable).with_name("relay"))
TARGETS = {  # ratio -> (target, "min" or "max")
    "sync_vs_emulator_ceiling": (0.8, "min"),
    "rate_limit_utilisation": (0.9, "min"),
    "engine_vs_naive": (50.0, "min"),
    "frequent_vs_full_pipeline_1M": (0.25, "max"),
    "frequent_job_1M_with_publish_s": (60.0, "max"),  # the Dagster run, start to end, the stakeholder copy included
    "cost_per_customer_1M_vs_100k": (1.3, "max"),
    "peak_rss_1M_row_sync_gb": (1.0, "max"),  # the first sync of each shipped people model, at its width
    "peak_rss_3M_row_sync_gb": (1.2, "max"),
    "peak_rss_1M_unchanged_rerun_gb": (0.6, "max"),
}


# ------------------------------------------------------------------------------------------ helpers
class StepStopped(Exception):
    """A step of a scale failed or ran past --step-limit: the scale stops there (the single-node ceiling)."""


def timed(command: list[str], env: dict, log: Path, limit_s: float | None = None) -> dict:
    """Run a command; wall seconds and the peak RSS of its largest process (support/peak.py). Raises
    StepStopped, with those figures, when it fails or runs past `limit_s`."""
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        run = peak.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=limit_s)
    figures = {"seconds": round(run.seconds, 2), "peak_rss_gb": round(run.peak_mb / 1024, 3)}
    if run.timed_out or run.returncode != 0:
        figures["stopped"] = f"past the {limit_s:.0f} s limit" if run.timed_out else f"failed with exit {run.returncode}"
        raise StepStopped(figures)
    return figures


def emulator_env(urls: dict[str, str]) -> dict[str, str]:
    return {"RELAY_DESTINATIONS": "emulator", **destination_env(urls)}


def admin(url: str, path: str, body: dict | None = None) -> dict:
    response = httpx.post(f"{url}/_emulator/{path}", json=body or {}, timeout=120) if body is not None or path == "reset" \
        else httpx.get(f"{url}/_emulator/{path}", timeout=120)
    response.raise_for_status()
    return response.json() if response.content else {}


def sync_runs(warehouse: Path, since: datetime) -> list[dict]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cursor = con.execute(
            "select sync_name, destination, status, planned_add + planned_change + planned_remove as planned, "
            "acked_add + acked_change + acked_remove as acked, rejected, requests, duration_s, rows_per_s "
            "from relay.sync_runs where started_at >= ? order by started_at", [since])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


# ------------------------------------------------------------------------------------------ per scale
def job_steps(dagster_home: Path, job: str) -> dict:
    """The latest run of `job` in this instance: seconds per step, and from start to the last sync's end."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(dagster_home))
    record = instance.get_run_records(filters=dg.RunsFilter(job_name=job), limit=1)[0]
    steps = {s.step_key: s for s in instance.get_run_step_stats(record.dagster_run.run_id)}
    synced = max(s.end_time for key, s in steps.items() if key == "destinations")
    return {"run_s": round(record.end_time - record.start_time, 2),
            "to_destinations_s": round(synced - record.start_time, 2),
            "steps": {key: round(s.end_time - s.start_time, 2) for key, s in steps.items()}}


STEPS = {"generate": "sample data", "dbt_build": "full dbt build", "first_sync": "first sync, all",
         "full_pipeline": "daily job, same data", "append_1h": "+1 h of activity", "frequent_path": "frequent path"}


def pipeline_at_scale(customers: int, work: Path, urls: dict[str, str], log: Path, limit_s: float | None) -> dict:
    """Every step at one scale, in a fresh warehouse; a step that fails or runs past `limit_s` ends the scale,
    its figures kept under out[step]["stopped"]."""
    work.mkdir(parents=True, exist_ok=True)
    dagster_home = work / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    (dagster_home / "dagster.yaml").unlink(missing_ok=True)
    (dagster_home / "dagster.yaml").symlink_to(ROOT / "dagster.yaml")
    warehouse = work / "warehouse.duckdb"
    env = {**os.environ, **emulator_env(urls), "RELAY_WAREHOUSE": str(warehouse), "RELAY_DATA_DIR": str(work),
           "DAGSTER_HOME": str(dagster_home), "DBT_PROFILES_DIR": str(ROOT / "dbt_project")}
    for url in urls.values():
        admin(url, "reset")
    out: dict = {"customers": customers}
    print(f"== {customers:,} customers", flush=True)
    commands = {"generate": ["sample-data", "--customers", str(customers)], "dbt_build": ["build"], "first_sync": ["sync"],
                "full_pipeline": ["run", "daily_full"], "append_1h": ["sample-data", "--append-hours", "1"],
                "frequent_path": ["run", "frequent_path"]}
    try:
        for step, args in commands.items():
            since = datetime.now(timezone.utc).replace(tzinfo=None)
            try:
                out[step] = timed([RELAY, *args], env, log, limit_s)
            except StepStopped as stopped:
                out[step] = stopped.args[0]
                print(f"   {STEPS[step]:<22} stopped: {out[step]['stopped']} after {out[step]['seconds']:.1f}s, "
                      f"peak {out[step]['peak_rss_gb']:.1f} GB", flush=True)
                break
            _job_figures(out, step, warehouse, since, dagster_home)
    finally:
        for path in sorted(work.glob("**/*.duckdb*"), reverse=True):  # keep the disk: the warehouse and its copies
            if path.is_dir() and not path.is_symlink():                 # (and the copy's generations directory)
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    return out


def _job_figures(out: dict, step: str, warehouse: Path, since: datetime, dagster_home: Path) -> None:
    o = out[step]
    if step in ("first_sync", "full_pipeline", "frequent_path"):
        o["syncs"] = sync_runs(warehouse, since)
    if step in ("full_pipeline", "frequent_path"):
        o["job"] = job_steps(dagster_home, "daily_full" if step == "full_pipeline" else "frequent_path")
    detail = ""
    if step == "first_sync":
        detail = f"  {sum(r['requests'] for r in o['syncs']):,} requests"
    elif step == "full_pipeline":
        out["unchanged_rerun_requests"] = sum(r["requests"] for r in o["syncs"])
        detail = f"  {out['unchanged_rerun_requests']} requests"
    elif step == "frequent_path":
        detail = (f"  {sum(r['acked'] for r in o['syncs']):,} rows acknowledged; {o['job']['to_destinations_s']:.1f}s "
                  f"from run start to the last sync's end, {o['job']['run_s']:.1f}s with the publish")
    print(f"   {STEPS[step]:<22} {o['seconds']:>8.1f}s  peak {o['peak_rss_gb']:.2f} GB{detail}", flush=True)


# ------------------------------------------------------------------------------------------ sync engine
def sync_process(destination: str, warehouse: Path, env: dict, apply: bool = True, sync=None) -> dict:
    """One sync in a process of its own (python -m sinks.engine): its figures, wall seconds and peak RSS.
    `sync`: its spec (default: bench_destinations' narrow model)."""
    command = sync_command(sync or spec(destination), warehouse, "--allow-large-change", *(() if apply else ("--plan",)))
    measured = peak.run(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    run = json.loads(measured.stdout.splitlines()[-1])
    result = {"status": run["status"], "message": run["message"], "requests": run["requests"],
              "rows_per_s": run["rows_per_s"], "duration_s": run["duration_s"],
              **{total: sum(run[f"{total}_{kind}"] for kind in ("add", "change", "remove"))
                 for total in ("planned", "acked")}}
    if measured.returncode != 0 or result["status"] not in ("succeeded", "planned"):
        raise SystemExit(f"{destination} sync failed: {result}")
    return {**result, "seconds": round(measured.seconds, 2), "peak_rss_gb": round(measured.peak_mb / 1024, 3)}


def memory(rows: int, big_rows: int, work: Path, urls: dict[str, str]) -> dict:
    """The shipped people model of each destination at its real width (bench/real_width.py), `rows` rows:
    first sync, unchanged rerun, then 1% changed: plan (the diff) and sync, each process's peak RSS; then
    Customer.io's at `big_rows`, first sync only (memory must not grow with rows)."""
    template = real_width.build_template(work / "template")
    env = {**os.environ, **emulator_env(urls), "RELAY_DATA_DIR": str(work), **BUDGETS_OUT_OF_REACH}
    out = {"rows": rows, "big_rows": big_rows, "sync_memory_mb": config.number("RELAY_SYNC_MEMORY_MB")}
    for destination in (*real_width.PEOPLE_SYNCS, "big"):
        name, n = ("customerio", big_rows) if destination == "big" else (destination, rows)
        warehouse = work / "rss.duckdb"
        admin(urls[name], "reset")
        sync = real_width.make_model(template, warehouse, name, n)
        o = out[destination] = {"model": sync.name, "columns": len(sync.columns), "rows": n}
        o["first_sync"] = sync_process(name, warehouse, env, sync=sync)
        if destination != "big":
            o["unchanged_rerun"] = sync_process(name, warehouse, env, sync=sync)
            con = duckdb.connect(str(warehouse))
            con.execute(f"update {sync.relation} set orders_count = coalesce(orders_count, 0) + 1 "
                        "where hash(customer_key) % 100 = 0")
            o["changed"] = con.execute(f"select count(*) from {sync.relation} where hash(customer_key) % 100 = 0").fetchone()[0]
            con.close()
            o["diff_only"] = sync_process(name, warehouse, env, apply=False, sync=sync)
            o["changed_sync"] = sync_process(name, warehouse, env, sync=sync)
        for path in work.glob("rss.duckdb*"):
            path.unlink()
        admin(urls[name], "reset")
        print(f"   {sync.name} ({len(sync.columns)} columns), {n:,} rows: first sync {o['first_sync']['seconds']:.1f}s "
              f"{o['first_sync']['rows_per_s']:,.0f} rows/s peak {o['first_sync']['peak_rss_gb']:.2f} GB"
              + (f"; unchanged rerun {o['unchanged_rerun']['seconds']:.1f}s peak {o['unchanged_rerun']['peak_rss_gb']:.2f} GB; "
                 f"1% changed: diff {o['diff_only']['seconds']:.1f}s, sync {o['changed_sync']['seconds']:.1f}s peak "
                 f"{o['changed_sync']['peak_rss_gb']:.2f} GB" if destination != "big" else ""), flush=True)
    return out


def _auth(destination: str) -> str:
    if destination == "customerio":
        return "Basic " + base64.b64encode(f"{KEYS['CUSTOMERIO_SITE_ID']}:{KEYS['CUSTOMERIO_TRACK_API_KEY']}".encode()).decode()
    if destination == "cordial":
        return "Basic " + base64.b64encode(KEYS["CORDIAL_API_KEY"].encode() + b":").decode()
    return f"ApiKey-v1 {KEYS['TALON_ONE_INTEGRATION_KEY']}"


def prebuilt(destination: str, rows: int, start: int, work: Path) -> list[tuple[str, str, bytes, int]]:
    """Valid bulk requests, serialised before the clock starts: (method, path, body, rows in it)."""
    requests = []
    people = [(f"c{i:07d}", f"person{i}@example.com", f"t-c{i:07d}", i % 7,
               f"2024-01-{1 + i % 28:02d}T00:00:00Z", ("none", "silver", "gold")[i % 3]) for i in range(start, start + rows)]
    size = 5000 if destination == "cordial" else 1000
    for k in range(0, rows, size):
        part = people[k:k + size]
        if destination == "customerio":
            body = {"batch": [{"type": "person", "action": "identify", "identifiers": {"id": key},
                               "attributes": {"orders_count": n, "last_order_at": t, "vip_tier": v}}
                              for key, _, _, n, t, v in part]}
            requests.append(("POST", "/api/v2/batch", json.dumps(body).encode(), len(part)))
        elif destination == "talon_one":
            body = {"customerProfiles": [{"integrationId": tid, "attributes": {"orders_count": n, "last_order_at": t,
                                                                                "vip_tier": v}}
                                         for _, _, tid, n, t, v in part]}
            requests.append(("PUT", "/v2/customer_profiles", json.dumps(body).encode(), len(part)))
        else:
            path = work / f"ceiling-{k}.csv"
            path.write_text("channels.email.address,orders_count,last_order_at,vip_tier\n" +
                            "".join(f"{e},{n},{t},{v}\n" for _, e, _, n, t, v in part))
            body = {"source": {"transport": "http", "url": path.as_uri()}, "subscribe": False}
            requests.append(("POST", "/v2/contactimports", json.dumps(body).encode(), len(part)))
    return requests


async def hammer(destination: str, url: str, requests, concurrency: int) -> float:
    """The emulator's ceiling: pre-built requests, `concurrency` in flight, nothing else to do."""
    queue = list(reversed(requests))
    headers = {"Authorization": _auth(destination), "Content-Type": "application/json"}

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            method, path, body, _ = queue.pop()
            response = await client.request(method, path, content=body)
            response.raise_for_status()
            if path == "/v2/contactimports":  # an import is done when its job is
                job = response.json()["jobID"]
                while (await client.get(f"/v2/jobs/{job}")).json()["status"] not in ("complete", "failed"):
                    await asyncio.sleep(0.05)

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return sum(r[3] for r in requests) / (time.monotonic() - started)


def throughput(rows: int, work: Path, urls: dict[str, str], latency_ms: float, rounds: int) -> dict:
    env = {**os.environ, **emulator_env(urls), "RELAY_DATA_DIR": str(work), "RELAY_CONCURRENCY": "8",
           **BUDGETS_OUT_OF_REACH}
    out = {}
    for destination, url in urls.items():
        warehouse = work / f"{destination}.duckdb"
        # Rounds of (a first sync by the engine in a process of its own, then the ceiling on the same emulator):
        # each ratio compares two measurements a few seconds apart, and the median of them resists the
        # machine's noise (one slow moment sinks one round, not the figure).
        pairs = []
        for _ in range(rounds):
            admin(url, "reset")  # a first sync each round: setup included
            for path in work.glob(f"{destination}.duckdb*"):
                path.unlink()
            make_model(warehouse, rows)
            engine = sync_process(destination, warehouse, env)
            ceiling = asyncio.run(hammer(destination, url, prebuilt(destination, rows, 5_000_000, work), 8))
            pairs.append((engine, ceiling, engine["rows_per_s"] / ceiling))
        engine, ceiling, _ = sorted(pairs, key=lambda p: p[2])[len(pairs) // 2]
        # Against latency a network and a vendor's servers add: the engine, then one request per row.
        admin(url, "faults", {"latency_ms": latency_ms})
        for path in work.glob(f"{destination}.duckdb*"):  # a first sync again, not exits and entries
            path.unlink()
        make_model(warehouse, rows, start=3_000_000)  # keys stay 7 digits
        engine_latency = sync_process(destination, warehouse, env)
        naive_rows = max(200, int(10 * 1000 / max(latency_ms, 1)))  # ~10 s of a sequential loop
        os.environ.update(env)
        naive_rate = naive(destination, url, warehouse, naive_rows)
        admin(url, "faults", {"latency_ms": 0})
        naive_rate_0 = naive(destination, url, warehouse, 2000)
        for path in work.glob(f"{destination}.duckdb*"):
            path.unlink()
        out[destination] = {
            "rows": rows, "engine_rows_per_s": engine["rows_per_s"], "engine_requests": engine["requests"],
            "ceiling_rows_per_s": round(ceiling), "engine_vs_ceiling": round(engine["rows_per_s"] / ceiling, 3),
            "rounds": [{"engine_rows_per_s": e["rows_per_s"], "ceiling_rows_per_s": round(c), "ratio": round(r, 3)}
                       for e, c, r in pairs],
            "latency_ms": latency_ms, "engine_rows_per_s_at_latency": engine_latency["rows_per_s"],
            "naive_rows_per_s_at_latency": round(naive_rate, 1),
            "engine_vs_naive": round(engine_latency["rows_per_s"] / naive_rate, 1),
            "naive_rows_per_s_at_0ms": round(naive_rate_0), "engine_vs_naive_at_0ms": round(engine["rows_per_s"] / naive_rate_0, 1),
        }
        o = out[destination]
        print(f"   {destination:<11} engine {o['engine_rows_per_s']:>8,.0f} rows/s, ceiling {o['ceiling_rows_per_s']:>8,} "
              f"({o['engine_vs_ceiling']:.2f}); at {latency_ms:.0f} ms: engine {o['engine_rows_per_s_at_latency']:,.0f} vs "
              f"naive {o['naive_rows_per_s_at_latency']:,.1f} rows/s ({o['engine_vs_naive']:,.0f}x)", flush=True)
        admin(url, "reset")
    return out


def rate_limited(rate: int, work: Path, urls: dict[str, str]) -> dict:
    """Cordial's per-contact API under an emulator limit of `rate` requests/s, client budget the same."""
    url = urls["cordial"]
    admin(url, "reset")
    admin(url, "faults", {"rate_limits": {"api": {"limit": rate, "window_s": 1}}})
    rows = rate * 20
    warehouse = work / "rate.duckdb"
    make_model(warehouse, rows)
    env = {**os.environ, **emulator_env(urls), "RELAY_DATA_DIR": str(work), "RELAY_CONCURRENCY": "8",
           "CORDIAL_RATE_LIMIT_PER_MIN": str(rate * 60), "CORDIAL_IMPORT_MIN_ROWS": "1000000000"}
    result = sync_process("cordial", warehouse, env)
    stats = admin(url, "stats")
    held = httpx.get(f"{url}/_emulator/state", timeout=120).json()["contacts"]
    admin(url, "faults", {"rate_limits": {"api": {"limit": 0, "window_s": 60}}})
    admin(url, "reset")
    for path in work.glob("rate.duckdb*"):
        path.unlink()
    # Request rate over the sync's delivery: every request it made (429s included) but setup's few.
    delivered = stats["by_route"].get("POST /v2/contacts", 0)
    accepted_rate = (delivered - stats["by_status"].get("429", 0)) / result["duration_s"]
    out = {"limit_per_s": rate, "rows": rows, "duration_s": result["duration_s"], "requests": result["requests"],
           "throttled_429": stats["by_status"].get("429", 0), "accepted_per_s": round(accepted_rate, 1),
           "utilisation": round(accepted_rate / rate, 3), "rows_lost": rows - len(held)}
    print(f"   rate limit {rate}/s: {out['accepted_per_s']}/s accepted ({out['utilisation']:.2f}), "
          f"{out['throttled_429']} 429s, {out['rows_lost']} rows lost", flush=True)
    return out


# ------------------------------------------------------------------------------------------ report
def ratios(results: dict) -> dict:
    scales = results["scales"]
    out = {}
    if "throughput" in results:  # not with --scales-only
        t = results["throughput"]
        out["sync_vs_emulator_ceiling"] = min(d["engine_vs_ceiling"] for d in t.values())
        out["rate_limit_utilisation"] = results["rate_limit"]["utilisation"] if results["rate_limit"]["rows_lost"] == 0 else 0.0
        out["engine_vs_naive"] = min(d["engine_vs_naive"] for d in t.values())
    big = scales.get("1000000", {})
    if "job" in big.get("frequent_path", {}):
        # dbt + diff + sync of each job (run start to its last sync's end): the purchase-to-destination latency
        out["frequent_vs_full_pipeline_1M"] = round(big["frequent_path"]["job"]["to_destinations_s"]
                                                    / big["full_pipeline"]["job"]["to_destinations_s"], 3)
        out["frequent_job_1M_with_publish_s"] = big["frequent_path"]["job"]["run_s"]
    if all("job" in scales.get(n, {}).get("frequent_path", {}) for n in ("100000", "1000000")):
        def per_customer(s):  # the pipeline's cost: dbt build + first sync, per customer
            return (s["dbt_build"]["seconds"] + s["first_sync"]["seconds"]) / s["customers"]
        out["cost_per_customer_1M_vs_100k"] = round(per_customer(scales["1000000"]) / per_customer(scales["100000"]), 3)
    if "memory" not in results:
        return out
    m = results["memory"]
    people = [m[d] for d in real_width.PEOPLE_SYNCS]
    out["peak_rss_1M_row_sync_gb"] = max(max(p["first_sync"]["peak_rss_gb"], p["changed_sync"]["peak_rss_gb"])
                                         for p in people)
    out["peak_rss_3M_row_sync_gb"] = m["big"]["first_sync"]["peak_rss_gb"]
    out["peak_rss_1M_unchanged_rerun_gb"] = max(p["unchanged_rerun"]["peak_rss_gb"] for p in people)
    return out


def markdown(results: dict) -> str:
    lines = [f"# Relay benchmark, {results['finished_at']}", "",
             f"{results['machine']['cpus']} CPUs, {results['machine']['memory_gb']} GB, load average before: "
             f"{results['machine']['load_before']}. Total {results['total_s'] / 60:.1f} min. Command: "
             f"`{results['command']}` at commit {results['commit']}.", "",
             "| ratio | measured | target | |", "|---|---|---|---|"]
    for name, value in results["ratios"].items():
        target, kind = TARGETS[name]
        ok = value >= target if kind == "min" else value <= target
        lines.append(f"| {name} | {value} | {'≥' if kind == 'min' else '≤'} {target} | {'met' if ok else 'MISSED'} |")
    lines += ["", "Each step: the command's seconds and the peak RSS of its largest process. Jobs: in brackets, from the "
              "Dagster run's start to its last sync's end (dbt + diff + sync, what the frequent/full ratio compares) "
              "and to the run's end (the stakeholder copy included).", "",
              "| customers | " + " | ".join(STEPS.values()) + " |", "|---" * (len(STEPS) + 1) + "|"]
    for s in _all_scales(results):
        earlier = f" (run of {s['from']})" if "from" in s else ""
        lines.append(f"| {s['customers']:,}{earlier} | " + " | ".join(_cell(s, step) for step in STEPS) + " |")
    for s in _all_scales(results):
        if "job" in s.get("frequent_path", {}):
            lines += ["", f"Steps at {s['customers']:,} customers (s): " + "; ".join(
                f"{job} " + ", ".join(f"{k.split('__')[-1]} {v}" for k, v in s[key]["job"]["steps"].items())
                for job, key in (("daily", "full_pipeline"), ("frequent", "frequent_path")))]
    if "memory" not in results:  # --scales-only
        return "\n".join(lines + [""])
    lines += ["", "| destination | engine rows/s | ceiling rows/s | engine / ceiling | rows/s at latency | naive rows/s "
              "| engine / naive | naive at 0 ms | engine / naive at 0 ms |", "|---|---|---|---|---|---|---|---|---|"]
    for name, d in results["throughput"].items():
        lines.append(f"| {name} | {d['engine_rows_per_s']:,.0f} | {d['ceiling_rows_per_s']:,} | {d['engine_vs_ceiling']} "
                     f"| {d['engine_rows_per_s_at_latency']:,.0f} ({d['latency_ms']:.0f} ms) | {d['naive_rows_per_s_at_latency']} "
                     f"| {d['engine_vs_naive']} | {d['naive_rows_per_s_at_0ms']:,} | {d['engine_vs_naive_at_0ms']} |")
    m, r = results["memory"], results["rate_limit"]
    lines += ["", f"Memory: the shipped people models at their width, {m['rows']:,} rows (Customer.io's also at "
              f"{m['big_rows']:,}); peak RSS of each sync process (RELAY_SYNC_MEMORY_MB {m['sync_memory_mb']}).", "",
              "| model | columns | rows | first sync s (rows/s) | peak GB | unchanged rerun s (peak GB) "
              "| 1% changed: diff s, sync s (peak GB) |", "|---|---|---|---|---|---|---|"]
    for o in (m[d] for d in (*real_width.PEOPLE_SYNCS, "big")):
        f = o["first_sync"]
        lines.append(f"| {o['model']} | {o['columns']} | {o['rows']:,} | {f['seconds']} ({f['rows_per_s']:,.0f}) | "
                     f"{f['peak_rss_gb']} | " + (f"{o['unchanged_rerun']['seconds']} ({o['unchanged_rerun']['peak_rss_gb']}) | "
                                                 f"{o['diff_only']['seconds']}, {o['changed_sync']['seconds']} "
                                                 f"({o['changed_sync']['peak_rss_gb']}) |" if "changed_sync" in o else "| |"))
    lines += ["",
              f"Rate limit {r['limit_per_s']}/s: {r['accepted_per_s']}/s accepted over {r['duration_s']} s "
              f"({r['throttled_429']} answers 429), {r['rows_lost']} of {r['rows']:,} rows lost.", ""]
    return "\n".join(lines)


def _all_scales(results: dict) -> list[dict]:
    """This run's scales and those of the runs given with --include, smallest first."""
    return sorted([*results["scales"].values(), *results.get("included", [])], key=lambda s: s["customers"])


def _cell(s: dict, step: str) -> str:
    if step not in s:
        return "not run"
    f = s[step]
    text = f"{f['seconds']} s, {f['peak_rss_gb']} GB"
    if "stopped" in f:
        return f"**{f['stopped']}** ({text})"
    if step == "first_sync":
        text += f", {sum(r['requests'] for r in f['syncs']):,} requests"
    if step == "full_pipeline":
        text += f", {s['unchanged_rerun_requests']} requests"
    if "job" in f:
        text += f" [{f['job']['to_destinations_s']} s; {f['job']['run_s']} s]"
    return text


def plot(results: dict, path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (pip install matplotlib)"
    scales = _all_scales(results)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for step, label in STEPS.items():
        done = [s for s in scales if step in s and "stopped" not in s[step]]
        ax.plot([s["customers"] for s in done], [s[step]["seconds"] for s in done], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("customers")
    ax.set_ylabel("seconds")
    ax.set_title("Relay: cost against scale")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="100000,1000000", help="comma-separated customer counts")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    parser.add_argument("--work", type=Path, help="scratch directory (default: a temporary one)")
    # A first sync long enough that throughput, not the plan's fixed costs, decides: a Talon.One sync of 100k
    # rows spends a large share of its time planning a single row group on one thread.
    parser.add_argument("--sync-rows", type=int, default=300_000, help="rows per destination for throughput")
    parser.add_argument("--rss-rows", type=int, default=1_000_000, help="rows of each people model (memory)")
    parser.add_argument("--scales-only", action="store_true",
                        help="only the pipeline at each scale (the single-node ceiling: --scales 3000000,10000000)")
    parser.add_argument("--rss-big-rows", type=int, default=3_000_000, help="rows of the larger Customer.io model")
    parser.add_argument("--rounds", type=int, default=3, help="engine/ceiling rounds per destination (median reported)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="emulator latency for the naive comparison")
    parser.add_argument("--rate", type=int, default=200, help="emulator rate limit (requests/s) for the utilisation test")
    parser.add_argument("--step-limit", type=float, help="seconds after which a step is stopped, and its scale with it")
    parser.add_argument("--include", type=Path, action="append", default=[],
                        help="an earlier run's results.json whose scales join the tables and the plot (e.g. the ceiling's, "
                             "docs/bench-ceiling.json)")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "bench.log"
    log.write_text("")
    started = time.monotonic()
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                           "load_before": [round(x, 2) for x in os.getloadavg()]},
               "arguments": {k: str(v) for k, v in vars(args).items()}, "scales": {},
               "command": " ".join(["bench/bench.py", *sys.argv[1:]]),
               "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True).stdout.strip() or "unknown"}
    for path in args.include:  # an earlier run's scales, and those it included, unless this run measures them again
        earlier = json.loads(path.read_text())
        results.setdefault("included", []).extend(
            {**scale, "from": scale.get("from", earlier["finished_at"])}
            for scale in [*earlier["scales"].values(), *earlier.get("included", [])] if scale["customers"] not in scales)
    with EmulatorProcess() as emulators, tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work, urls = Path(tmp), emulators.urls
        for customers in scales:
            scale = results["scales"][str(customers)] = pipeline_at_scale(customers, work / str(customers), urls, log,
                                                                           args.step_limit)
            write(results, args.out, started)  # a long run's figures survive its interruption
            if any("stopped" in v for v in scale.values() if isinstance(v, dict)):
                break  # a larger scale would stop too
        if not args.scales_only:
            print("== sync engine", flush=True)
            results["memory"] = memory(args.rss_rows, args.rss_big_rows, work, urls)
            results["throughput"] = throughput(args.sync_rows, work, urls, args.latency_ms, args.rounds)
            results["rate_limit"] = rate_limited(args.rate, work, urls)
    print(write(results, args.out, started))
    return 0


def write(results: dict, out: Path, started: float) -> str:
    results["total_s"] = round(time.monotonic() - started, 1)
    results["finished_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results["ratios"] = ratios(results)
    results["targets"] = {k: {"target": v[0], "kind": v[1]} for k, v in TARGETS.items()}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    note = plot(results, out / "cost_vs_scale.png")
    report = markdown(results) + (f"\n{note}\n" if note else "\n![cost against scale](cost_vs_scale.png)\n")
    (out / "results.md").write_text(report)
    return report


if __name__ == "__main__":
    raise SystemExit(main())
