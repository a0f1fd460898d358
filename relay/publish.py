"""The stakeholder copy: a read-only snapshot of the warehouse, published atomically after each run.

DuckDB lets one process hold the warehouse file, and even a read-only connection blocks dbt. So
stakeholders never open the working file: they open `published/warehouse.duckdb`, a symbolic link to one
generation of the copy, swung to the next generation by rename (atomic on POSIX). A query already running
keeps reading the generation it opened; the next one sees the new generation; a crash before the swap
leaves the previous one in place.

A publish brings a spare generation (one no reader holds) up to date with the warehouse block by block,
writing only the blocks that differ: DuckDB rewrites only what changed when it checkpoints, so the writes
follow the run's change, not the warehouse's size. Comparing bytes needs no record of which tables a run
wrote, and a spare left half-written by a crash is simply repaired. When every spare is held by a reader,
a new generation is written whole; generations nobody holds beyond one spare are deleted.
"""

import errno
import fcntl
import os
import time
from pathlib import Path

import duckdb

from relay import config

READ = 1 << 20  # bytes compared at a time; where they differ, each WRITE-sized piece that differs is written
WRITE = 1 << 16


def published_path() -> Path:
    return Path(os.environ.get("RELAY_PUBLISHED", config.data_dir() / "published" / "warehouse.duckdb")).absolute()


def _generations(target: Path) -> Path:
    return target.with_name(target.name + ".generations")


def publish() -> dict:
    source = config.warehouse_path()
    target = published_path()
    generations = _generations(target)
    generations.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target)
    started = time.monotonic()
    current = _current(target)
    # Fold the write-ahead log into the file so its bytes are the whole database, and hold the connection
    # (DuckDB's lock on the file) while they are read, so no other process writes it meanwhile.
    with duckdb.connect(str(source)) as con:
        con.execute("checkpoint")
        generation, written = _refresh_a_spare(source, generations, current)
    if os.environ.get("RELAY_FAILPOINT") == "publish_before_replace":  # crash testing: die between copy and swap
        os._exit(137)
    _swap(target, generation)
    _remove_unused(generations, keep={generation, current})
    return {"path": str(target), "generation": generation.name, "bytes": generation.stat().st_size,
            "written_bytes": written, "seconds": round(time.monotonic() - started, 3)}


def _current(target: Path) -> Path | None:
    return target.resolve() if target.is_symlink() and target.exists() else None


def _refresh_a_spare(source: Path, generations: Path, current: Path | None) -> tuple[Path, int]:
    """Bring the newest generation no reader holds up to date with `source`, or write a new one."""
    existing = sorted(generations.glob("*.duckdb"), key=_number, reverse=True)
    new = generations / f"{max(map(_number, existing), default=0) + 1}.duckdb"
    for path in [*(p for p in existing if p != current), new]:
        fd = _open_unread(path)
        if fd is None:
            continue  # a reader still has this generation open
        try:
            written = _copy_differing_blocks(source, fd)
            os.fsync(fd)
            os.fchmod(fd, 0o444)  # the copy is for reading; writes belong in the warehouse
            return path, written
        finally:
            os.close(fd)  # releases the lock
    raise AssertionError("unreachable: the last candidate is a new file")


def _open_unread(path: Path) -> int | None:
    """`path` opened for writing and locked, or None when a reader has it open: DuckDB's readers hold a shared
    lock on the file for as long as they are open. A generation is read-only between publishes."""
    if path.exists():
        os.chmod(path, 0o644)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except OSError as error:
        os.close(fd)
        os.chmod(path, 0o444)
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return None
        raise


def _copy_differing_blocks(source: Path, fd: int) -> int:
    size = source.stat().st_size
    written = 0
    with open(source, "rb", buffering=0) as src:
        for offset in range(0, size, READ):
            new = os.pread(src.fileno(), READ, offset)
            old = os.pread(fd, len(new), offset)
            if old == new:
                continue
            new, old = memoryview(new), memoryview(old)
            for piece in range(0, len(new), WRITE):
                if new[piece:piece + WRITE] != old[piece:piece + WRITE]:
                    written += os.pwrite(fd, new[piece:piece + WRITE], offset + piece)
    os.ftruncate(fd, size)
    return written


def _swap(target: Path, generation: Path) -> None:
    link = target.with_name(f".{target.name}.{os.getpid()}.link")
    link.unlink(missing_ok=True)
    link.symlink_to(generation.relative_to(target.parent))  # relative: the directory can move
    os.replace(link, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def _remove_unused(generations: Path, keep: set) -> None:
    """Delete generations no reader holds, except the current one and the spare just replaced."""
    for path in generations.glob("*.duckdb"):
        if path in keep:
            continue
        fd = _open_unread(path)
        if fd is not None:
            path.unlink()
            os.close(fd)


def _number(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        return 0


def _remove_leftovers(target: Path) -> None:
    """Delete what publishes killed before their swap left behind (links, and the whole copies made before
    generations existed), unless their process still runs."""
    for leftover in [*target.parent.glob(f".{target.name}.*.tmp"), *target.parent.glob(f".{target.name}.*.link")]:
        pid = leftover.name[len(target.name) + 2:].rsplit(".", 1)[0]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            leftover.unlink(missing_ok=True)
        except (ValueError, OSError):  # not our name, or a process of another user: leave it
            pass


def connect_published() -> duckdb.DuckDBPyConnection:
    """How stakeholders (and `relay query`) read: read-only, on the published snapshot."""
    path = published_path()
    if not path.exists():
        raise FileNotFoundError(f"no published warehouse at {path} yet: `relay build`, `relay sync`, `relay run` "
                                "and `make demo` publish it when they finish")
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.IOException:
        # A publish took the generation this path named a moment ago for its next copy; the link now
        # names the fresh one.
        time.sleep(0.05)
        return duckdb.connect(str(path), read_only=True)
