"""The stakeholder copy: a read-only snapshot of the warehouse, published atomically after each run.

DuckDB lets one process hold the warehouse file, and even a read-only connection blocks dbt. So
stakeholders never open the working file: they open `published/warehouse.duckdb`, a symbolic link to one
generation of the copy, swung to the next generation by rename (atomic on POSIX). A query already running
keeps reading the generation it opened; the next one sees the new generation; a crash before the swap
leaves the previous one in place.

A publish brings a spare generation (one no reader holds) up to date with the warehouse piece by piece,
writing only the pieces that differ: DuckDB rewrites only what changed when it checkpoints, so the writes
follow the run's change, not the warehouse's size. Each generation keeps a digest of every piece beside it
(`<generation>.digests`), so a publish reads the warehouse, which the run has just written and the page
cache still holds, and not the spare, which nobody has read since it was current. Comparing content needs
no record of which tables a run wrote, and a spare left half-written by a crash has no digests and is
compared byte by byte instead. After the swap, the generation it replaced is brought to the same content
too when no reader holds it, so the next publish writes one run's change, not two (after a daily full
rebuild, that second change is most of the file). When every spare is held by a reader, a new generation
is written whole; generations nobody holds beyond one spare are deleted.
"""

import errno
import fcntl
import os
import time
from pathlib import Path

import duckdb
import xxhash

from relay import config

PIECE = 1 << 16  # the unit compared, digested and written
READ = 1 << 20  # bytes read at a time
DIGEST = 16  # bytes of a piece's digest (xxh3, 128 bits: a collision would leave a stale piece in the copy)
MAGIC = b"relay-publish-digests-v1\n"


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
        generation, written, digests = _refresh_a_spare(source, generations, current)
        if os.environ.get("RELAY_FAILPOINT") == "publish_before_replace":  # crash testing: between copy and swap
            os._exit(137)
        _swap(target, generation)
        caught_up = _catch_up(current, source, digests) if current else 0
    _remove_unused(generations, keep={generation, current})
    return {"path": str(target), "generation": generation.name, "bytes": generation.stat().st_size,
            "written_bytes": written, "caught_up_bytes": caught_up, "seconds": round(time.monotonic() - started, 3)}


def _current(target: Path) -> Path | None:
    return target.resolve() if target.is_symlink() and target.exists() else None


def _refresh_a_spare(source: Path, generations: Path, current: Path | None) -> tuple[Path, int, list[bytes]]:
    """Bring the newest generation no reader holds up to date with `source`, or write a new one:
    (the generation, bytes written, its digests)."""
    existing = sorted(generations.glob("*.duckdb"), key=_number, reverse=True)
    new = generations / f"{max(map(_number, existing), default=0) + 1}.duckdb"
    for path in [*(p for p in existing if p != current), new]:
        fd = _open_unread(path)
        if fd is None:
            continue  # a reader still has this generation open
        try:
            written, digests = _sync_pieces(source, fd, path)
            return path, written, digests
        finally:
            os.close(fd)  # releases the lock
    raise AssertionError("unreachable: the last candidate is a new file")


def _catch_up(previous: Path, source: Path, digests: list[bytes]) -> int:
    """Give the generation just replaced the new content as well, when no reader holds it: it is the next
    publish's spare, and its digests name exactly the pieces that differ."""
    if not _digests_path(previous).exists():
        return 0  # no digests (a copy made before them): the next publish compares it byte by byte
    fd = _open_unread(previous)
    if fd is None:
        return 0
    try:
        return _sync_pieces(source, fd, previous, digests)[0]
    finally:
        os.close(fd)


def _sync_pieces(source: Path, fd: int, path: Path, known: list[bytes] | None = None) -> tuple[int, list[bytes]]:
    """Make the locked generation `fd` (at `path`) equal to `source`, writing only the pieces that differ:
    found by its digests when it has them, else by reading it. `known`: `source`'s digests, if already
    computed. Returns (bytes written, `source`'s digests), the digests saved beside the generation."""
    old = _take_digests(path)
    size = source.stat().st_size
    digests, written, per_read = [], 0, READ // PIECE
    with open(source, "rb", buffering=0) as src:
        for offset in range(0, size, READ):
            first = offset // PIECE
            if known and old and known[first:first + per_read] == old[first:first + per_read]:
                digests.extend(known[first:first + per_read])
                continue  # nothing to read either: both sides' digests are known and agree
            new = memoryview(os.pread(src.fileno(), READ, offset))
            before = memoryview(os.pread(fd, len(new), offset)) if old is None else None
            for piece in range(0, len(new), PIECE):
                chunk, index = new[piece:piece + PIECE], first + piece // PIECE
                digest = known[index] if known else xxhash.xxh3_128_digest(chunk)
                digests.append(digest)
                same = (before[piece:piece + PIECE] == chunk) if before is not None else (
                    index < len(old) and old[index] == digest)
                if not same:
                    written += os.pwrite(fd, chunk, offset + piece)
    os.ftruncate(fd, size)
    os.fsync(fd)
    os.fchmod(fd, 0o444)  # the copy is for reading; writes belong in the warehouse
    _save_digests(path, digests)
    return written, digests


def _digests_path(path: Path) -> Path:
    return path.with_name(path.name + ".digests")


def _take_digests(path: Path) -> list[bytes] | None:
    """The digests saved beside generation `path` if they describe it, removed (durably) before any write to
    the generation, so a publish killed mid-write leaves none behind that no longer hold."""
    saved = _digests_path(path)
    try:
        data = saved.read_bytes()
    except FileNotFoundError:
        return None
    saved.unlink()
    _fsync_directory(path.parent)
    header = f"{PIECE} {path.stat().st_size}\n".encode()
    if not data.startswith(MAGIC + header):
        return None
    body = data[len(MAGIC + header):]
    return [body[i:i + DIGEST] for i in range(0, len(body), DIGEST)]


def _save_digests(path: Path, digests: list[bytes]) -> None:
    saved = _digests_path(path)
    temporary = saved.with_name(f".{saved.name}.{os.getpid()}")
    with open(temporary, "wb") as out:
        out.write(MAGIC + f"{PIECE} {path.stat().st_size}\n".encode() + b"".join(digests))
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, saved)  # after the generation's own fsync: digests never run ahead of the bytes


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


def _swap(target: Path, generation: Path) -> None:
    link = target.with_name(f".{target.name}.{os.getpid()}.link")
    link.unlink(missing_ok=True)
    link.symlink_to(generation.relative_to(target.parent))  # relative: the directory can move
    os.replace(link, target)
    _fsync_directory(target.parent)  # make the rename itself durable


def _fsync_directory(path: Path) -> None:
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _remove_unused(generations: Path, keep: set) -> None:
    """Delete generations no reader holds, except the current one and the spare just replaced, with their
    digests; and digests whose generation is gone."""
    for path in generations.glob("*.duckdb"):
        if path in keep:
            continue
        fd = _open_unread(path)
        if fd is not None:
            path.unlink()
            os.close(fd)
    for saved in generations.glob("*.duckdb.digests"):
        if not saved.with_suffix("").exists():
            saved.unlink(missing_ok=True)


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
