"""Throughput of a first sync per destination, against its emulator in a separate process.

    .venv/bin/python bench/bench_destinations.py [--rows 100000] [--naive-rows 10000] [--concurrency 8]
                                                 [--latency-ms 0] [--ceiling]

For each of Customer.io, Cordial and Talon.One: a `--rows` attribute sync through the engine (rows/s and
requests), then the baseline, a minimal httpx loop sending one identify/upsert per row, over `--naive-rows`
other rows (its rows/s holds for any count; a full 100k loop only takes longer). The emulators run with
rate limits off and the client's rate budgets set out of reach, so the figures are the engine's own.
`--latency-ms` adds a delay to every emulator answer, as a network and a vendor's servers would.
`--ceiling` also measures the emulator's own ceiling right after each engine run (bench/bench.py's pre-built
bulk requests, as `make bench` does) and prints engine / ceiling, the ratio the benchmark targets.
Not collected by pytest (it lives outside tests/).
"""

import argparse
import asyncio
import base64
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/support

from sinks import destinations  # noqa: E402
from sinks.declarations import SyncSpec  # noqa: E402
from sinks.engine import SyncRun  # noqa: E402
from support.emulators import EMULATOR_CREDENTIALS as KEYS  # noqa: E402
from support.emulators import EmulatorProcess, destination_env  # noqa: E402

COLUMNS = {"customer_key": "varchar", "email": "varchar", "integration_id": "varchar", "orders_count": "bigint",
           "last_order_at": "varchar", "vip_tier": "varchar"}
ATTRIBUTES = ("orders_count", "last_order_at", "vip_tier")
# destination -> (identifier column, column meta)
SYNCS = {
    "customerio": ("customer_key", {}),
    "cordial": ("email", {"last_order_at": {"cordial_type": "date"}}),
    "talon_one": ("integration_id", {"last_order_at": {"talon_one_type": "time"}}),
}


# Client-side rate budgets out of reach: the benchmarks measure the engine, not the vendors' limits.
BUDGETS_OUT_OF_REACH = {"CUSTOMERIO_RATE_LIMIT": "1e9", "CORDIAL_RATE_LIMIT_PER_MIN": "1e11",
                        "TALON_ONE_RATE_LIMIT": "1e9", "TALON_ONE_MANAGEMENT_RATE_LIMIT": "1e9"}


def make_model(warehouse: Path, rows: int, start: int = 0) -> None:
    con = duckdb.connect(str(warehouse))
    con.execute("create schema if not exists syncs")
    con.execute(f"""
        create or replace table syncs.people as
        select 'c' || lpad(cast(i as varchar), 7, '0') as customer_key,
               'person' || i || '@example.com' as email,
               't-c' || lpad(cast(i as varchar), 7, '0') as integration_id,
               cast(i % 7 as bigint) as orders_count,
               strftime(timestamp '2024-01-01' + to_hours(i % 8760), '%Y-%m-%dT%H:%M:%SZ') as last_order_at,
               ['none', 'silver', 'gold'][i % 3 + 1] as vip_tier
        from range({start}, {start + rows}) t(i)""")
    con.close()


def spec(destination: str) -> SyncSpec:
    identifier, meta = SYNCS[destination]
    columns = {c: COLUMNS[c] for c in ("customer_key", identifier, *ATTRIBUTES)}
    return SyncSpec(name=f"bench__{destination}", relation="syncs.people", destination=destination,
                    object="attributes", primary_key=("customer_key",), identifier=identifier, on_exit="clear",
                    schedule="daily", columns=columns, column_meta=meta)


def naive(destination: str, url: str, warehouse: Path, rows: int) -> float:
    """One request per row, one after another: what a hand-written sync loop does."""
    make_model(warehouse, rows, start=10_000_000)
    con = duckdb.connect(str(warehouse), read_only=True)
    records = con.execute("select customer_key, email, integration_id, orders_count, last_order_at, vip_tier "
                          "from syncs.people").fetchall()
    con.close()
    if destination == "customerio":
        token = base64.b64encode(f"{KEYS['CUSTOMERIO_SITE_ID']}:{KEYS['CUSTOMERIO_TRACK_API_KEY']}".encode()).decode()
        auth = f"Basic {token}"
    elif destination == "cordial":
        auth = f"Basic {base64.b64encode(KEYS['CORDIAL_API_KEY'].encode() + b':').decode()}"
    else:
        auth = f"ApiKey-v1 {KEYS['TALON_ONE_INTEGRATION_KEY']}"
    started = time.monotonic()
    with httpx.Client(base_url=url, headers={"Authorization": auth}) as client:
        for key, email, integration_id, *values in records:
            attributes = dict(zip(ATTRIBUTES, values))
            if destination == "customerio":
                response = client.put(f"/api/v1/customers/{key}", json=attributes)
            elif destination == "cordial":
                response = client.post("/v2/contacts", json={"channels": {"email": {"address": email}}, **attributes})
            else:
                response = client.put(f"/v2/customer_profiles/{integration_id}", json={"attributes": attributes})
            response.raise_for_status()
    return rows / (time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--naive-rows", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--ceiling", action="store_true", help="also measure the emulator's ceiling (engine / ceiling)")
    args = parser.parse_args()
    emulators = EmulatorProcess("--latency-ms", str(args.latency_ms))
    urls = emulators.urls
    os.environ.update({
        "RELAY_DESTINATIONS": "emulator", "RELAY_CONCURRENCY": str(args.concurrency), **destination_env(urls),
        **BUDGETS_OUT_OF_REACH,
    })
    print(f"{'destination':<12} {'engine rows/s':>14} {'requests':>9} {'seconds':>8}   {'naive rows/s':>13} {'requests':>9}"
          + (f"   {'ceiling rows/s':>14} {'ratio':>6}" if args.ceiling else ""))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for destination, url in urls.items():
                warehouse = Path(tmp) / f"{destination}.duckdb"
                make_model(warehouse, args.rows)
                result = SyncRun(spec(destination), destinations.build(destination), warehouse).execute()
                if (result.status, result.acked) != ("succeeded", args.rows):
                    raise SystemExit(f"{destination}: {result.status}, {result.acked} acked: {result.message}")
                ceiling = ""
                if args.ceiling:
                    from bench import hammer, prebuilt  # bench/bench.py, which imports this module

                    rate = asyncio.run(hammer(destination, url, prebuilt(destination, args.rows, 5_000_000, Path(tmp)),
                                              args.concurrency))
                    ceiling = f"   {rate:>14,.0f} {result.rows_per_s / rate:>6.2f}"
                naive_rate = naive(destination, url, warehouse, args.naive_rows)
                print(f"{destination:<12} {result.rows_per_s:>14,.0f} {result.requests:>9,} {result.duration_s:>8.1f}"
                      f"   {naive_rate:>13,.0f} {args.naive_rows:>9,}{ceiling}", flush=True)
    finally:
        emulators.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
