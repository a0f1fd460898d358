"""dbt against a test's own warehouse, and the raw tables the contract declares."""

import atexit
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import duckdb

from .project import DBT, DBT_DIR

WORKER_DIR = "RELAY_TEST_WORKER_DIR"  # set by tests/conftest.py: this pytest process's own directory


_FORKSERVER = None


def dbt_command(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """`command` (DBT and its arguments) as `subprocess.run` would run it, but in a process forked from one that
    has imported dbt already: a test run issues scores of dbt commands, and importing dbt costs each of them
    seconds. Every command starts from the same untouched imports, so none sees another's state."""
    global _FORKSERVER
    if _FORKSERVER is None:
        _FORKSERVER = multiprocessing.get_context("forkserver")
        _FORKSERVER.set_forkserver_preload(["dbt.cli.main", "dbt.adapters.duckdb.impl"])
    with tempfile.TemporaryDirectory() as directory:
        out, err = Path(directory) / "stdout", Path(directory) / "stderr"
        process = _FORKSERVER.Process(target=_dbt_main, args=(command[1:], env, str(cwd), str(out), str(err)))
        process.start()
        process.join()
        return subprocess.CompletedProcess(command, process.exitcode, out.read_text(), err.read_text())


def _dbt_main(args: list[str], env: dict[str, str], cwd: str, out: str, err: str) -> None:
    """The `dbt` executable's entry point, in a forked process: its environment, directory and output."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for path, fd in ((out, 1), (err, 2)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    from dbt.cli.main import cli

    try:
        cli.main(args, prog_name="dbt")  # exits; multiprocessing turns its code into the process's
    finally:
        # What the executable's exit runs and a forked process's skips: dbt-duckdb closes the database there,
        # which checkpoints it (a copied or renamed file must not leave its write-ahead log behind).
        atexit._run_exitfuncs()


def point(link: Path, target: Path | str) -> None:
    """Make `link` a symlink to `target`, replacing whatever it was in one rename."""
    staged = link.with_name(f".{link.name}.link")
    staged.unlink(missing_ok=True)
    staged.symlink_to(target)
    staged.replace(link)


@contextmanager
def _by_the_worker_path(warehouse: Path, keep: bool):
    """`warehouse` by the path dbt has seen all along in this worker. dbt's saved parse holds only for the
    profile it was made with, which names the warehouse's path: a warehouse elsewhere (a module's fixture)
    is reached through the worker's data link while dbt runs (tests/conftest.py), and its fresh target
    directory starts from the worker's saved parse, which dbt itself checks before using. `keep`: this
    command's parse becomes the worker's."""
    worker = os.environ.get(WORKER_DIR)
    if not worker:
        yield warehouse
        return
    link, real = Path(worker) / "data", warehouse.parent.resolve()
    before = os.readlink(link) if link.is_symlink() else None
    moved = before is None or Path(before).resolve() != real
    saved, ours = (directory / "dbt" / "target" / "partial_parse.msgpack" for directory in (Path(worker), real))
    if saved.exists() and not ours.exists():
        ours.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(saved, ours)
    if moved:
        point(link, real)
    try:
        yield link / warehouse.name
    finally:
        if moved and before is None:
            link.unlink()
        elif moved:
            point(link, before)
    if keep and ours.exists() and not (saved.exists() and saved.samefile(ours)):
        saved.parent.mkdir(parents=True, exist_ok=True)
        staged = saved.with_name(".partial_parse.msgpack")
        shutil.copy(ours, staged)
        staged.replace(saved)


def run_dbt(warehouse: Path, *args: str, vars: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """dbt against `warehouse`, with a private target/log dir so parallel tests never share artifacts."""
    work = warehouse.parent / "dbt"
    command = [DBT, *args, "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR),
               "--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    if vars:
        command += ["--vars", vars]
    # A parse made with --vars or for another file name would not serve the next command.
    with _by_the_worker_path(warehouse, keep=not vars and warehouse.name == "warehouse.duckdb") as path:
        env = {**os.environ, "RELAY_WAREHOUSE": str(path)}
        result = dbt_command(command, env, DBT_DIR)
    if check and result.returncode != 0:
        raise AssertionError(f"dbt {' '.join(args)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}")
    return result


def create_contract_tables(warehouse: Path, skip_sources=(), drop_columns=(), extra_column=True) -> None:
    """Empty raw tables exactly as the contract declares them (plus an extra column loaders add)."""
    from relay import contract

    warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse))
    for table in contract.sources():
        if table["source"] in skip_sources:
            continue
        columns = [f'"{c["name"]}" {c["data_type"]}' for c in table["columns"]
                   if f'{table["source"]}.{table["table"]}.{c["name"]}' not in drop_columns]
        if extra_column:
            columns.append("_loader_extra varchar")
        con.execute(f'create schema if not exists {table["source"]}')
        con.execute(f'create or replace table {table["source"]}."{table["table"]}" ({", ".join(columns)})')
    con.close()
