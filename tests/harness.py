"""Crash and fault tooling shared by tests/test_crash_recovery.py and tests/soak.py.

The destination harnesses themselves (credentials, sync specs, readers of what each destination holds) are
test_sync_engine's, reused as they are; this module adds what a crash test needs on top of them:

* `EmulatorProcess`: the three emulators served by `python -m emulators` in a process of their own
  (so killing or loading the sync process never touches them), with the harnesses' credentials;
* `attach()`: a harness reading an emulator at a URL instead of starting one in this process;
* `start_sync()`: one sync in a worker process that can be SIGKILLed, or kill itself through the engine's
  failpoint (RELAY_FAILPOINT=after_ack:N: right after the Nth acknowledged batch, before its state write);
* the invariants checked after every crash: `overclaimed()` (sync_state claims a value the destination
  does not hold) and `mismatched()` (the destination differs from what the model says it should hold).

Not collected by pytest (the file name does not start with test_).
"""

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from relay.config import EMULATOR_CREDENTIALS  # noqa: E402
from test_sync_engine import HARNESSES, Harness, people_rows, query  # noqa: E402, F401

ROOT = Path(__file__).resolve().parents[1]
NAMES = tuple(HARNESSES)  # customerio, cordial, talon_one
CRASH_EXIT = 137  # what the engine's failpoint exits with, as a SIGKILLed shell child reports


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def credentials() -> dict[str, str]:
    """The harnesses' credentials, as the emulator process reads them from its environment."""
    env: dict[str, str] = {}
    for cls in HARNESSES.values():
        env.update(cls.env(SimpleNamespace(server=SimpleNamespace(url=""))))
    return {k: v for k, v in env.items() if k in EMULATOR_CREDENTIALS}


class EmulatorProcess:
    """`python -m emulators` on free ports, rate limits off, `args` appended (e.g. --fault-5xx 0.1)."""

    def __init__(self, *args: str, log: Path | None = None) -> None:
        self.ports = {name: free_port() for name in NAMES}
        command = [sys.executable, "-m", "emulators",
                   "--customerio-port", str(self.ports["customerio"]), "--cordial-port", str(self.ports["cordial"]),
                   "--talon-one-port", str(self.ports["talon_one"]),
                   "--rate-limit-customerio", "0", "--rate-limit-customerio-app", "0", "--rate-limit-cordial", "0",
                   "--rate-limit-talon-one", "0", "--rate-limit-talon-one-management", "0", *args]
        self._log = open(log, "ab") if log else subprocess.DEVNULL
        self.process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **credentials()},
                                        stdout=self._log, stderr=self._log)
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        deadline = time.monotonic() + 30
        for url in self.urls.values():
            while True:
                try:
                    httpx.get(f"{url}/_emulator/stats").raise_for_status()
                    break
                except httpx.HTTPError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"the emulators did not start (exit {self.process.poll()})")
                    time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> "EmulatorProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def attach(name: str, url: str) -> Harness:
    """The harness of destination `name`, reading the emulator at `url` (started elsewhere)."""
    cls = HARNESSES[name]
    harness = cls.__new__(cls)
    harness.server = SimpleNamespace(url=url)
    harness.secrets = [v for k, v in harness.env().items() if "KEY" in k]
    # A large state takes a while to serialise: read it without the 5 s default timeout.
    harness.state = lambda: admin(harness, "state")
    harness.stats = lambda: admin(harness, "stats")
    return harness


def admin(h: Harness, path: str, body: dict | None = None) -> dict:
    """An emulator admin call: GET without a body, POST with one (reset takes {})."""
    url = f"{h.server.url}/_emulator/{path}"
    response = httpx.post(url, json=body, timeout=120) if body is not None else httpx.get(url, timeout=120)
    response.raise_for_status()
    return response.json()


# ------------------------------------------------------------------------------------------ the sync worker
# One SyncRun in a process of its own, as `relay sync` runs it. `patch` sets module constants first (e.g. a
# smaller batch, so a small model still makes many requests); the client's own view of the faults it met
# (timeouts, connections dropped, slow answers) is counted by wrapping httpx and printed with the result.
WORKER = r"""
import collections, importlib, json, sys, time
import httpx
from sinks import destinations
from sinks.declarations import SyncSpec
from sinks.engine import SyncRun, Tuning
from sinks.engine.__main__ import crash_after_acks

job = json.loads(sys.argv[1])
spec = SyncSpec(**{**job["spec"], "primary_key": tuple(job["spec"]["primary_key"])})
for module, name, value in job.get("patch", []):
    setattr(importlib.import_module(module), name, value)
seen = collections.Counter()
slow_s = job.get("slow_s") or float("inf")
request = httpx.AsyncClient.request

async def observed(self, *args, **kwargs):
    started = time.monotonic()
    try:
        response = await request(self, *args, **kwargs)
    except httpx.TimeoutException:
        seen["client_timeouts"] += 1
        raise
    except (httpx.NetworkError, httpx.RemoteProtocolError):
        seen["connections_dropped"] += 1
        raise
    if time.monotonic() - started >= slow_s:
        seen["slow_answers"] += 1
    return response

httpx.AsyncClient.request = observed
if job.get("sabotage"):  # a broken engine that records rows as it sends them, before any acknowledgement
    from sinks.engine.delivery import Delivery
    from sinks.engine.sender import BatchSender
    make = Delivery.__init__
    send = BatchSender.send

    def make_with_flush(self, *args, **kwargs):
        make(self, *args, **kwargs)
        self.sender.flush = lambda: self.write(self.acks.take())

    async def record_then_send(self, client, batch):
        self.ack_batch(batch)
        self.flush()
        await send(self, client, batch)

    Delivery.__init__, BatchSender.send = make_with_flush, record_then_send
failpoint = job.get("failpoint")
run = SyncRun(spec, destinations.build(spec.destination), job["warehouse"],
              allow_large_change=job.get("allow_large_change", False), tuning=Tuning(**job.get("tuning", {})),
              on_ack=crash_after_acks(int(failpoint.partition(":")[2])) if failpoint else None)
result = run.execute()
print(json.dumps({**result.as_dict(), "plan": None, "observed": dict(seen)}, default=str), flush=True)
"""


def start_sync(h: Harness, warehouse: Path, *, env: dict | None = None, patch=(), slow_s: float | None = None,
               allow_large_change: bool = False, failpoint: str | None = None,
               sabotage: bool = False) -> subprocess.Popen:
    """Start one sync of the harness's people spec in a worker process (stdout: the result as JSON).
    `sabotage` runs a deliberately broken engine (state written before the acknowledgement), to prove
    that the crash checks catch one."""
    tuning = {name: value for module, name, value in patch if module == "tuning"}
    patch = [p for p in patch if p[0] != "tuning"]
    job = {"spec": asdict(h.people), "warehouse": str(warehouse), "patch": [list(p) for p in patch],
           "tuning": tuning, "failpoint": failpoint,
           "slow_s": slow_s, "allow_large_change": allow_large_change, "sabotage": sabotage}
    child_env = {**os.environ, **h.env(), **(env or {})}
    return subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(job)], cwd=ROOT, env=child_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float | None = None) -> dict:
    """Wait for a worker; its result, or {'exit': code, 'error': ...} when it did not print one."""
    out, err = process.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if process.returncode == 0 and lines:
        return {"exit": 0, **json.loads(lines[-1])}
    return {"exit": process.returncode, "error": err.strip().splitlines()[-1:] if err else []}


# ------------------------------------------------------------------------------------------ invariants
def state_rows(h: Harness, warehouse: Path) -> list[dict]:
    """The model rows sync_state says the destination acknowledged (its stored payloads)."""
    return [json.loads(p) for (p,) in query(
        warehouse, "select payload from relay.sync_state where sync_name = ?", [h.people.name])]


def expected_of(h: Harness, row: dict) -> dict:
    """What the destination holds for one model row. A vip_tier set to null (the attribute the soak clears)
    reads as the destination's `unset` (Talon.One keeps a cleared string as "")."""
    value = h.expected([row])[h.id_of(row)]
    if row.get("vip_tier", "") is None and h.unset is not None:
        value["vip_tier"] = h.unset
    return value


def overclaimed(h: Harness, warehouse: Path, held: dict | None = None) -> list[str]:
    """Identifiers whose sync_state row claims a value the destination does not hold. State may lag the
    destination after a crash (acknowledged, not yet written), never lead it: this must always be empty."""
    held = h.held() if held is None else held
    return [h.id_of(row) for row in state_rows(h, warehouse) if held.get(h.id_of(row)) != expected_of(h, row)]


def mismatched(expected: dict[str, dict], held: dict[str, dict]) -> dict[str, list[str]]:
    """How the destination differs from what it should hold: missing, wrong and unexpected records."""
    return {
        "missing": sorted(k for k in expected if k not in held),
        "wrong": sorted(k for k in expected if k in held and held[k] != expected[k]),
        "unexpected": sorted(k for k in held if k not in expected),
    }
