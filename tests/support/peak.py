"""A command's peak memory, measured from outside: the high-water RSS (VmHWM) of its process and of every
process it starts, the largest of them.

wait4's ru_maxrss cannot be used: Linux carries the launcher's own high-water mark into a child across
fork and exec, so a child of a large test or benchmark process reports at least the parent's peak."""

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.05  # VmHWM only rises, so a sample this late misses only the last moments of a process


@dataclass
class Measured:
    returncode: int
    seconds: float
    peak_mb: float
    stdout: bytes
    stderr: bytes
    timed_out: bool = False


def _hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0  # gone, or a zombie without memory


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                pass
    return found


def run(command: list[str], *, cwd=None, env=None, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, timeout: float | None = None) -> Measured:
    """Run `command` to its end, or until `timeout` seconds have passed (then it and every process it started
    are killed); what it printed (when piped), its wall seconds and peak RSS in MB."""
    started = time.monotonic()
    # Its own process group, so that a timeout kills what it started too.
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout, stderr=stderr, stdin=stdin,
                               start_new_session=timeout is not None)
    peaks: dict[int, int] = {}
    timed_out = False
    while True:
        for pid in _tree(process.pid):
            peaks[pid] = max(peaks.get(pid, 0), _hwm_kb(pid))
        if timeout is not None and not timed_out and time.monotonic() - started > timeout:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
        try:
            out, err = process.communicate(timeout=POLL_S)
            break
        except subprocess.TimeoutExpired:
            continue
    return Measured(process.returncode, time.monotonic() - started, max(peaks.values()) / 1024, out or b"", err or b"",
                    timed_out)
