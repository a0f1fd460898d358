"""One sync in a child process, through the engine's entry point `python -m sinks.engine` (or, when a test
needs its extras, tests/support/sync_worker.py, which wraps it): a process that can be SIGKILLed, crash at
the engine's failpoint, or run next to another one."""

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from sinks.declarations import SyncSpec

from .project import ROOT

CRASH_EXIT = 137  # what the engine's failpoint exits with, as a SIGKILLed shell child reports


def sync_command(spec: SyncSpec, warehouse: Path, *flags: str, worker: tuple[str, ...] = ()) -> list[str]:
    """The command running one sync of `spec` on `warehouse`; `flags`: the engine's (--plan, --wait,
    --failpoint after_ack:N, --tuning JSON, ...); `worker`: sync_worker's options (--patch, --slow-s, --sabotage),
    which need the project root as the working directory."""
    engine = [json.dumps(asdict(spec)), str(warehouse), *flags]
    if worker:
        return [sys.executable, "-m", "tests.support.sync_worker", *worker, "--", *engine]
    return [sys.executable, "-m", "sinks.engine", *engine]


def start_sync(spec: SyncSpec, warehouse: Path, *flags: str, env: dict | None = None, tuning: dict | None = None,
               patch=(), slow_s: float | None = None, sabotage: bool = False) -> subprocess.Popen:
    """Start one sync (stdout: its result as JSON; see finish). `patch`: (module, name, value) constants set
    first; `tuning`: sinks.engine.Tuning fields; `sabotage`: sync_worker's broken engine. With --wait among
    `flags` it returns once the process said "ready": write a line to its stdin to start the run."""
    worker = [part for module, name, value in patch for part in ("--patch", f"{module}:{name}={json.dumps(value)}")]
    worker += ["--slow-s", str(slow_s)] if slow_s is not None else []
    worker += ["--sabotage"] if sabotage else []
    flags += ("--tuning", json.dumps(tuning)) if tuning else ()
    process = subprocess.Popen(sync_command(spec, warehouse, *flags, worker=tuple(worker)), cwd=ROOT,
                               env={**os.environ, **(env or {})}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    if "--wait" in flags:
        line = process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"the sync process did not start: {line}{'' if line else process.stderr.read()}")
    return process


def finish(process: subprocess.Popen, timeout: float | None = None) -> dict:
    """Wait for a sync process: {'exit': 0, ...its result...}, or {'exit': code, 'error': [last stderr line]}
    when it did not print one."""
    out, err = process.communicate(timeout=timeout)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        return {"exit": process.returncode, "error": err.strip().splitlines()[-1:] if err else []}
    result = {"exit": 0}
    for line in lines:  # the engine's result, then sync_worker's observations
        result.update(line)
    return result
