"""An emulator's state across restarts: loaded at start, saved after changes and at shutdown."""

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .base import Emulator


class State(Protocol):
    """What an emulator's destination state offers to the shared machinery."""

    def clear(self) -> None: ...
    def to_json(self) -> dict[str, Any]: ...
    def load(self, data: dict[str, Any]) -> None: ...


def lifespan(emulator: "Emulator"):
    """The app's lifespan: with a state file, load it, then save it while serving (emulator.dirty) and at exit."""

    @contextlib.asynccontextmanager
    async def serving(app: Any):
        state_file = emulator.state_file
        if state_file is None:
            yield
            return
        if state_file.exists():
            emulator.state.load(json.loads(state_file.read_bytes()))
        stop = asyncio.Event()
        saver = asyncio.create_task(_autosave(emulator, state_file, stop))
        try:
            yield
        finally:
            stop.set()
            emulator.dirty = True  # always leave a file behind at shutdown
            await saver

    return serving


async def _autosave(emulator: "Emulator", state_file: Path, stop: asyncio.Event) -> None:
    # The only writer of the state file, so saves never interleave; the last pass runs after `stop`.
    interval = emulator.save_interval_s
    while True:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if emulator.dirty:
            emulator.dirty = False
            # Serialise on the loop (a consistent snapshot), write in a thread (no disk I/O on the loop).
            started = time.monotonic()
            data = json.dumps(emulator.state.to_json(), separators=(",", ":")).encode()
            # Serialising blocks request handling: with a large state, save less often so that
            # saving never takes more than a tenth of the loop's time.
            interval = max(emulator.save_interval_s, 10 * (time.monotonic() - started))
            await asyncio.to_thread(write_atomic, state_file, data)
        if stop.is_set():
            return


def write_atomic(path: Path, data: bytes) -> None:
    """Write tmp + rename, so a crash mid-save never leaves a truncated state file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
