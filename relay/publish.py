"""The stakeholder copy: a read-only snapshot of the warehouse, published atomically after each run.

DuckDB lets one process hold the warehouse file, and even a read-only connection blocks dbt. So
stakeholders never open the working file: they open `published/warehouse.duckdb`, which is replaced
by rename (atomic on POSIX). A query already running keeps reading the snapshot it opened; the next
one sees the new snapshot; a crash mid-copy leaves the previous snapshot in place.
"""

import os
import shutil
import time
from pathlib import Path

import duckdb

from relay import config


def published_path() -> Path:
    return Path(os.environ.get("RELAY_PUBLISHED", config.data_dir() / "published" / "warehouse.duckdb")).resolve()


def publish() -> dict:
    source = config.warehouse_path()
    target = published_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target)
    started = time.monotonic()
    # Fold the write-ahead log into the file so the copy is complete on its own.
    with duckdb.connect(str(source)) as con:
        con.execute("checkpoint")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o444)  # the copy is for reading; writes belong in the warehouse
        if os.environ.get("RELAY_FAILPOINT") == "publish_before_replace":  # crash testing: die between copy and swap
            os._exit(137)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)
    return {"path": str(target), "bytes": target.stat().st_size, "seconds": round(time.monotonic() - started, 3)}


def _remove_leftovers(target: Path) -> None:
    """Delete the copies of publishes killed before their swap (each one a full warehouse), unless their
    process still runs."""
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        pid = leftover.name[len(target.name) + 2:-len(".tmp")]
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
    return duckdb.connect(str(path), read_only=True)
