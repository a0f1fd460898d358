"""Where a job's dbt commands run: a target directory of their own under the data directory's dbt/, starting
from the parse the last one left there.

dbt reparses the whole project (seconds per command) unless its saved parse was made with the same profile,
and the warehouse path is part of the profile: the parse make manifest leaves in dbt_project/target serves
one data directory only. Each data directory keeps its own (config.dbt_target_dir()); every command starts
from it and leaves its own parse there, so a project edited since is reparsed only where it changed.
"""

import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Iterator, Sequence

import dagster as dg
from dagster_dbt import DbtCliResource

from relay import config

PARTIAL_PARSE = "partial_parse.msgpack"
KEEP_COMMANDS = 20  # each command's directory (manifest, compiled SQL, log) for looking into a recent run
COMMAND_DIR = re.compile(r".+-[0-9a-f]{7}-[0-9a-f]{7}")  # dbt_cli's names: op, run id, a unique suffix


def dbt_cli(dbt: DbtCliResource, args: Sequence[str], context: dg.AssetExecutionContext) -> Iterator:
    """dbt.cli(args) streamed, in a fresh directory under the data directory's dbt/ (see the module)."""
    home = config.dbt_target_dir()
    target = home / f"{context.op_execution_context.op.name}-{context.run.run_id[:7]}-{uuid.uuid4().hex[:7]}"
    target.mkdir(parents=True)
    saved = home / PARTIAL_PARSE
    if saved.exists():
        shutil.copyfile(saved, target / PARTIAL_PARSE)
    try:
        yield from dbt.cli(list(args), context=context, target_path=target).stream()
    finally:  # a failed build parsed the project all the same
        _keep_parse(target, saved)
        _prune(home)


def _keep_parse(target: Path, saved: Path) -> None:
    made = target / PARTIAL_PARSE
    if made.exists():  # replaced atomically: another job may be copying it
        temporary = saved.with_name(f".{target.name}.{PARTIAL_PARSE}")
        shutil.copyfile(made, temporary)
        os.replace(temporary, saved)


def _prune(home: Path) -> None:
    """The newest KEEP_COMMANDS commands' directories stay (a frequent job adds two every run), and any of the
    last hour (a long build of another job may still be writing to its own)."""
    commands = sorted((p for p in home.iterdir() if p.is_dir() and COMMAND_DIR.fullmatch(p.name)),
                      key=lambda p: p.stat().st_mtime, reverse=True)
    for old in commands[KEEP_COMMANDS:]:
        if old.stat().st_mtime < time.time() - 3600:
            shutil.rmtree(old, ignore_errors=True)
