"""An emulator's state across restarts: a snapshot (<name>.json) plus a journal of the changes since
(<name>.json.journal), loaded at start and appended to while serving.

A save writes what changed since the previous one, so it costs what changed: serialising a whole state of a
million people blocks the event loop for seconds, and requests would wait. The large collections say what
changed themselves (tracked.py); anything else is small and written again when its encoding differs. When
the journal outgrows the snapshot, a new snapshot replaces both, so loading never reads more than twice the
state.
"""

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .tracked import Tracked, TrackedList, TrackedSet

if TYPE_CHECKING:
    from .base import Emulator

log = logging.getLogger("emulators")

COMPACT_MIN_BYTES = 16_000_000  # below this, a journal is never worth a new snapshot


class State(Protocol):
    """What an emulator's destination state offers to the shared machinery."""

    def clear(self) -> None: ...
    def parts(self) -> dict[str, Any]: ...
    def load(self, data: dict[str, Any]) -> None: ...


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, deque):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode(value: Any) -> str:
    """The saved form: sets as sorted lists. Tracked dicts are copied out first: json walks a dict subclass
    through its items(), which would count as handing out every entry."""
    if isinstance(value, Tracked):
        value = _plain(value)
    elif isinstance(value, dict):
        value = {k: _plain(v) for k, v in value.items()}
    return json.dumps(value, separators=(",", ":"), default=_jsonable)


def _plain(value: Any) -> Any:
    """A Tracked dict as a plain one, with its entries' nested Tracked dicts; anything else as it is."""
    if not isinstance(value, Tracked):
        return value
    if not value.nested:
        return dict(value)  # dict's own copy reads the table directly, not through our methods
    return {key: _plain_entry(entry, value.nested) for key, entry in dict.items(value)}


def _plain_entry(entry: dict[str, Any], nested: tuple[str, ...]) -> dict[str, Any]:
    if not any(isinstance(entry.get(field), Tracked) for field in nested):
        return entry
    return {field: dict(v) if isinstance(v, Tracked) else v for field, v in entry.items()}


def json_ready(parts: dict[str, Any]) -> dict[str, Any]:
    """A state's parts as they would be saved (and served by /_emulator/state)."""
    return json.loads(encode(parts))


class Journal:
    """The saves of one state file. `load` (or a first `snapshot`) once; then each save appends the line
    `changes` returns, {"generation": g, "changes": {part: change}}. Lines of another generation than the
    snapshot's were already folded into it (a crash between writing a snapshot and emptying the journal)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.journal_path = journal_path(path)
        self.generation = 0
        self.snapshot_bytes = 0
        self.journal_bytes = 0
        self.must_snapshot = False  # a save failed after marking its changes saved: only a snapshot is whole
        self._saved: dict[str, tuple[Any, int | None, str | None]] = {}  # part -> (object, length, encoding)

    def load(self) -> dict[str, Any] | None:
        """The saved state (snapshot and journal), None when there is none; a torn last line is dropped."""
        data, self.generation, good = read_saved(self.path)
        self.snapshot_bytes = self.path.stat().st_size if self.path.exists() else 0
        if self.journal_path.exists():
            with open(self.journal_path, "r+b") as f:
                f.truncate(good)
        self.journal_bytes = good
        return data

    def saved(self, parts: dict[str, Any]) -> None:
        """Mark `parts` as saved in full (just loaded, or written as a snapshot)."""
        self._saved = {}
        for name, part in parts.items():
            self._mark_saved(name, part, None if _journaled(part) else encode(part))

    def _mark_saved(self, name: str, part: Any, encoding: str | None) -> None:
        if _journaled(part):
            _settle(part)
            self._saved[name] = (part, len(part), None)
        else:
            self._saved[name] = (part, None, encoding)

    def changes(self, parts: dict[str, Any]) -> str | None:
        """One journal line of what changed since the last save (None: nothing did), marking it saved."""
        encoded = []
        for name, part in parts.items():
            change = self._change(name, part)
            if change is not None:
                encoded.append(f"{json.dumps(name)}:{change}")
        if not encoded:
            return None
        return f'{{"generation":{self.generation},"changes":{{{",".join(encoded)}}}}}\n'

    def _change(self, name: str, part: Any) -> str | None:
        # The saved object itself is kept, not its id: a computed part's id can be reused by the next one.
        saved, length, encoding = self._saved.get(name, (None, 0, None))
        if saved is part and isinstance(part, (Tracked, TrackedSet)):
            change = _container_change(part)
            return None if change is None else encode(change)
        if saved is part and isinstance(part, TrackedList):
            indices, part.touched = part.touched, set()
            edits = {str(i): part[i] for i in indices if i < length}
            self._saved[name] = (part, len(part), None)
            return encode({"append": part[length:], "edit": edits}) if len(part) > length or edits else None
        whole = encode(part)  # a small part, or a tracked one replaced (a reset)
        self._mark_saved(name, part, whole)
        return None if whole == encoding else f'{{"whole":{whole}}}'

    def append(self, line: str) -> None:
        """Append a line of changes; durable when this returns (a crash mid-write leaves a torn line that
        load drops)."""
        data = line.encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.journal_path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.journal_bytes += len(data)

    def wants_snapshot(self) -> bool:
        return self.must_snapshot or self.journal_bytes > max(self.snapshot_bytes, COMPACT_MIN_BYTES)

    def snapshot(self, parts: dict[str, Any]) -> bytes:
        """The whole state as the next generation's snapshot, marked saved; `write_snapshot` writes it."""
        self.saved(parts)
        return encode({"journal_generation": self.generation + 1, **parts}).encode()

    def write_snapshot(self, data: bytes) -> None:
        """Replace the snapshot, then empty the journal (its lines are of the previous generation now)."""
        write_atomic(self.path, data)
        self.generation += 1
        with open(self.journal_path, "wb"):
            pass
        self.snapshot_bytes, self.journal_bytes = len(data), 0
        self.must_snapshot = False


def _journaled(part: Any) -> bool:
    return isinstance(part, (Tracked, TrackedSet, TrackedList))


def _settled(container: Any) -> bool:
    """A tracked container saved before, so that what it remembers is all that changed since."""
    return isinstance(container, (Tracked, TrackedSet)) and not container.fresh


def _settle(container: Any) -> None:
    """Mark a tracked container as saved in full, with the nested containers of its entries."""
    container.touched.clear()
    container.fresh = False
    for entry in dict.values(container) if isinstance(container, Tracked) and container.nested else ():
        for field in container.nested:
            if _journaled(entry.get(field)):
                _settle(entry[field])


def _container_change(part: Tracked | TrackedSet) -> dict[str, Any] | None:
    """What changed in a tracked set or dict since its last save, marking it saved; None: nothing."""
    keys, part.touched = part.touched, set()
    if isinstance(part, TrackedSet):
        add, remove = [e for e in keys if e in part], [e for e in keys if e not in part]
        return {"add": add, "remove": remove} if add or remove else None
    put, drop, edit = {}, [str(k) for k in keys if k not in part], {}
    for key in keys & dict.keys(part):
        entry = dict.__getitem__(part, key)
        if part.nested and all(_settled(entry.get(field)) for field in part.nested):
            # Its own fields again; its nested containers by what changed in them (below).
            edit[str(key)] = {"fields": {f: v for f, v in entry.items() if f not in part.nested}}
        else:
            put[key] = _plain_entry(entry, part.nested)
            for field in part.nested:
                if _journaled(entry.get(field)):
                    _settle(entry[field])
    for key, entry in dict.items(part) if part.nested else ():
        if key not in put:
            nested = {field: _container_change(entry[field]) for field in part.nested if _settled(entry.get(field))}
            if any(nested.values()) or str(key) in edit:
                edit.setdefault(str(key), {})["nested"] = nested
    return {"put": put, "drop": drop, "edit": edit} if put or drop or edit else None


def journal_path(path: Path) -> Path:
    """Where the journal of the snapshot at `path` lives."""
    return path.with_name(path.name + ".journal")


def read_saved(path: Path) -> tuple[dict[str, Any] | None, int, int]:
    """The state saved at `path` with its journal applied, the snapshot's generation, and the length of the
    journal's readable lines."""
    data = json.loads(path.read_bytes()) if path.exists() else None
    generation = data.pop("journal_generation", 0) if data is not None else 0
    journal = journal_path(path)
    good = 0
    as_sets: list[tuple[Any, Any]] = []  # (holder, key) of sets the journal changed: sorted lists again at the end
    if journal.exists():
        with open(journal, "rb") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    break  # a torn last line: the save it began never finished
                if not line.endswith(b"\n"):
                    break
                good += len(line)
                if entry["generation"] == generation:
                    data = _apply(data if data is not None else {}, entry["changes"], as_sets)
    for holder, key in as_sets:
        if isinstance(holder[key], set):
            holder[key] = sorted(holder[key])
    return data, generation, good


def _apply(data: dict[str, Any], changes: dict[str, Any], as_sets: list[tuple[Any, Any]]) -> dict[str, Any]:
    for name, change in changes.items():
        if "whole" in change:
            data[name] = change["whole"]
        elif "append" in change:
            part = data.setdefault(name, [])  # a snapshot from before this part existed
            for index, entry in change["edit"].items():
                part[int(index)] = entry
            part.extend(change["append"])
        else:
            _apply_container(data, name, change, as_sets)
    return data


def _apply_container(holder: Any, key: Any, change: dict[str, Any], as_sets: list[tuple[Any, Any]]) -> None:
    """Apply a `_container_change` to holder[key], a dict or (saved as a list) a set."""
    if "add" in change:
        if not isinstance(holder.get(key), set):
            holder[key] = set(holder.get(key, ()))
            as_sets.append((holder, key))
        holder[key].difference_update(change["remove"])
        holder[key].update(change["add"])
        return
    part = holder.setdefault(key, {})
    for dropped in change["drop"]:
        part.pop(dropped, None)
    part.update(change["put"])
    for entry_key, edit in change["edit"].items():
        if "fields" in edit:  # in place: a set an earlier line made of its members is listed under this dict
            entry = part[entry_key]
            kept = {field: entry[field] for field in edit["nested"]}
            entry.clear()
            entry.update(edit["fields"], **kept)
        for field, nested in edit["nested"].items():
            if nested is not None:
                _apply_container(part[entry_key], field, nested, as_sets)


def lifespan(emulator: "Emulator"):
    """The app's lifespan: with a state file, load it, then save what changes while serving and at exit."""

    @contextlib.asynccontextmanager
    async def serving(app: Any):
        state_file = emulator.state_file
        if state_file is None:
            yield
            return
        journal = Journal(state_file)
        data = journal.load()
        if data is not None:
            emulator.state.load(data)
            journal.saved(emulator.state.parts())
        else:  # a fresh directory: start with a snapshot of the empty state
            journal.write_snapshot(journal.snapshot(emulator.state.parts()))
        stop = asyncio.Event()
        saver = asyncio.create_task(_autosave(emulator, journal, stop))
        try:
            yield
        finally:
            stop.set()
            await saver

    return serving


async def _autosave(emulator: "Emulator", journal: Journal, stop: asyncio.Event) -> None:
    # The only writer of the state files, so saves never interleave. The pass that finds `stop` set is the
    # last: it starts after the server stopped, so nothing changes after it.
    interval = emulator.save_interval_s
    while True:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        final = stop.is_set()
        # Encode on the loop (a consistent view; what changes meanwhile goes into the next save), write in a
        # thread (no disk I/O on the loop).
        started = time.monotonic()
        try:
            if journal.wants_snapshot() and (journal.must_snapshot or not final):
                # Rare (the changes since the last snapshot outweigh it); encoding the whole state blocks the loop.
                data = journal.snapshot(emulator.state.parts())
                blocked = time.monotonic() - started
                await asyncio.to_thread(journal.write_snapshot, data)
            else:
                line = journal.changes(emulator.state.parts())
                blocked = time.monotonic() - started
                if line is not None:
                    await asyncio.to_thread(journal.append, line)
        except OSError as exc:  # e.g. a full disk: the changes it took are in memory only, so write them all
            log.error("saving %s failed (%s); the next save writes the whole state", journal.path, exc)
            journal.must_snapshot = True
            blocked = time.monotonic() - started
        # Saving must not take more than a tenth of the loop's time.
        interval = max(emulator.save_interval_s, 10 * blocked)
        if final:
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
    directory = os.open(path.parent, os.O_RDONLY)  # the rename itself durable before the journal is emptied
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
