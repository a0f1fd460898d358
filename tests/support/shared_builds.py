"""Artifacts (a built warehouse and what came with it) built once per session into a directory every xdist
worker sees: the first worker to ask builds, under a lock. A worker that finds an artifact being built
elsewhere builds another one that some collected test needs meanwhile, longest first, instead of idling;
then it waits. Registered with @artifact; test_bad_input and test_secrets use it."""

import fcntl
import os
import shutil
from pathlib import Path

# name -> (fixture that returns it, priority: higher first, build(directory, factory))
ARTIFACTS: dict[str, tuple[str, int, object]] = {}
_building = []


def artifact(name: str, fixture: str, priority: int = 0):
    def register(build):
        ARTIFACTS[name] = (fixture, priority, build)
        return build
    return register


def _root(factory) -> Path:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    base = factory.getbasetemp()
    root = (base.parent / f"bad-input-{run}") if run else (base / "bad-input")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _build_locked(root: Path, name: str, factory) -> None:
    """Build `name` unless done; the caller holds its lock."""
    directory = root / name
    if (directory / ".done").exists():
        return
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    _building.append(name)
    try:
        ARTIFACTS[name][2](directory, factory)
    finally:
        _building.pop()
    (directory / ".done").touch()


def shared(request, name: str) -> Path:
    """The directory of artifact `name`, built once per session (see ARTIFACTS)."""
    factory = request.getfixturevalue("tmp_path_factory")
    root = _root(factory)
    with open(root / f"{name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not _building:  # not from inside another build: its dependencies come first
                needed = {f for item in request.session.items for f in getattr(item, "fixturenames", ())}
                for other, (fixture, _, _) in sorted(ARTIFACTS.items(), key=lambda a: -a[1][1]):
                    if other != name and fixture in needed:
                        _build_if_free(root, other, factory)
            fcntl.flock(lock, fcntl.LOCK_EX)
        _build_locked(root, name, factory)
    return root / name


def built_within(factory, name: str) -> Path:
    """From inside another build: the directory of artifact `name`, built first if needed."""
    root = _root(factory)
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _build_locked(root, name, factory)
    return root / name


def _build_if_free(root: Path, name: str, factory) -> None:
    with open(root / f"{name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another worker has it
        try:
            _build_locked(root, name, factory)
        except Exception:  # noqa: BLE001 - the test that needs it builds it again and reports the failure
            pass
