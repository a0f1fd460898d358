"""What the fault soaks (bench/soak.py, bench/soak_events.py) share: the fault settings, 429 bursts, a run's
summary and the report's tables."""

import argparse
import inspect
import json
import random
import threading
import time
from collections import Counter
from pathlib import Path

from support.harnesses import admin
from sinks.http import HttpClient

CLIENT_TIMEOUT_S = inspect.signature(HttpClient.__init__).parameters["timeout_s"].default  # the adapters keep it
STALL_S = CLIENT_TIMEOUT_S + 5  # an injected stall outlasts the client's patience; the server applies it after
# Rows sent in a request of unknown fate are re-sent once a stalled copy can no longer land (sinks/engine).
RESEND_UNCONFIRMED_S = STALL_S + 5
SERVER_ERRORS = ("500", "502", "503", "504")
# The emulator's rate-limit group for data writes, and the low limit switched on for 429 bursts.
THROTTLE = {"customerio": ("track", {"limit": 2}), "cordial": ("api", {"limit": 200}),
            "talon_one": ("integration", {"limit": 5})}
LABELS = {"customerio": "Customer.io people", "cordial": "Cordial contacts", "talon_one": "Talon.One profiles"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def summary(result: dict) -> dict:
    """The figures of one worker's result worth keeping (or how it ended when it printed none)."""
    planned = sum(result.get(f"planned_{k}") or 0 for k in ("add", "change", "remove"))
    acked = sum(result.get(f"acked_{k}") or 0 for k in ("add", "change", "remove"))
    return {"exit": result["exit"], "status": result.get("status"), "planned": planned, "acked": acked,
            **{k: result.get(k) for k in ("rejected", "unsent", "resent", "unconfirmed", "requests", "retries",
                                          "throttled", "duration_s", "message", "error")}}


def stats_delta(after: dict, before: dict) -> dict:
    statuses = Counter(after["by_status"]) - Counter(before["by_status"])
    routes = Counter(after["by_route"]) - Counter(before["by_route"])
    return {"requests": after["requests"] - before["requests"], "by_status": dict(statuses), "by_route": dict(routes)}


class Bursts(threading.Thread):
    """Switches a low rate limit on (0.5-1.5 s) and off (4-10 s) at the emulator while a sync runs."""

    def __init__(self, h, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.h, self.rng, self.stop = h, rng, threading.Event()
        self.group, self.low = THROTTLE[h.name]
        self.bursts = 0

    def run(self) -> None:
        pause = self.rng.uniform(0.5, 1.5)  # the first burst early, so that even a short run meets one
        while not self.stop.wait(pause):
            admin(self.h, "faults", {"rate_limits": {self.group: self.low}})
            self.bursts += 1
            self.stop.wait(self.rng.uniform(0.5, 1.5))
            admin(self.h, "faults", {"rate_limits": {self.group: {"limit": 0}}})
            pause = self.rng.uniform(4, 10)

    def finish(self) -> int:
        self.stop.set()
        self.join()
        admin(self.h, "faults", {"rate_limits": {self.group: {"limit": 0}}})
        return self.bursts


def soak_faults(minimum: int, seed: int) -> dict:
    """10% 5xx and 2% drops everywhere; stalls and spikes scaled so each destination meets a few of them
    whatever its request count (a stall holds a request for the client's whole timeout)."""
    return {"error_rate": 0.10, "drop_rate": 0.02, "latency_ms": 0,
            "timeout_rate": min(0.05, 6 / max(minimum, 1)), "timeout_s": STALL_S,
            "spike_rate": min(0.10, 20 / max(minimum, 1)), "spike_ms": 2000, "seed": seed}


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[f"{c:,}" if isinstance(c, int) and not isinstance(c, bool) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def spread(total: int, parts: int) -> list[int]:
    """`total` (SIGKILLs) spread over `parts` (destinations) as evenly as it goes."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def conclude(report: dict, results: list[dict], started: float, path: Path) -> int:
    """Writes the report with its failed checks to `path`, says how it went, and the exit code (1: a check failed)."""
    report["seconds"] = round(time.monotonic() - started, 1)
    failed = [f"{r['destination']} {r.get('phase', '')}: {k}".replace(" :", ":") for r in results
              for k, ok in r["checks"].items() if not ok]
    report["failed_checks"] = failed
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"\n{'FAILED: ' + '; '.join(failed) if failed else 'every check passed'} "
          f"in {report['seconds'] / 60:.1f} min; results in {path}")
    return 1 if failed else 0


def common_arguments(parser: argparse.ArgumentParser, names: tuple[str, ...], root: Path, max_runs: int) -> None:
    """The options both soaks take."""
    parser.add_argument("--destinations", default=",".join(names))
    parser.add_argument("--max-runs", type=int, default=max_runs, help="runs allowed to converge")
    parser.add_argument("--concurrency", type=int, default=8, help="client concurrency (Customer.io, Talon.One)")
    parser.add_argument("--cordial-concurrency", type=int, default=32, help="client concurrency for Cordial")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=root / "artifacts" / "soak")
