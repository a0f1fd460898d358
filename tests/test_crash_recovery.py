"""Crashes at the worst moments lose nothing and claim nothing (the fast part of bench/soak.py's crash run).

* A sync killed right after a destination acknowledged a batch, before that batch's state write (the
  engine's failpoint, `--failpoint after_ack:N`): sync_state never claims a row the destination does not
  hold, the rerun resends exactly the rows state lacks (idempotent resends, no other duplicate) and
  converges, and nothing is recorded as delivered that was not. Per destination, over real HTTP.
* The check itself catches an engine that writes state before the acknowledgement.
* SIGKILL during `dbt build` and during the stakeholder-copy swap (relay/publish.py) leave the previous
  published copy readable and unchanged.

The heavy version (200k rows per destination under faults, 20+ SIGKILLs at random points) is
`.venv/bin/python bench/soak.py`; see its docstring.
"""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from sinks.destinations import customerio as customerio_adapter
from sinks.destinations import talon_one as talon_one_adapter
from support.crash_checks import overclaimed
from support.harnesses import HARNESSES, people_rows
from support.project import DBT, DBT_DIR, ROOT
from support.sync_process import CRASH_EXIT, finish, start_sync
from support.warehouse import ledger_keys, query

# Per destination: rows, module constants the worker sets (smaller requests, so a small model makes dozens of
# them), emulator latency (ms) so that other requests are in flight at the crash, and the acknowledged batch
# the process dies after. Every case flushes state often, so several state writes happen before the crash.
FLUSH_OFTEN = {"flush_every_s": 0.02}  # sinks.engine.Tuning
CASES = {
    "customerio": (2000, [(customerio_adapter.__name__, "MAX_BATCH_BYTES", 8 * 1024)], 30, 25),
    "cordial": (300, [], 10, 150),
    "talon_one": (2000, [(talon_one_adapter.__name__, "MAX_ITEMS", 50)], 30, 25),
}
RECORDS = {"customerio": "people", "cordial": "contacts", "talon_one": "profiles"}  # the destination's record list


@pytest.fixture(params=list(HARNESSES))
def h(request, monkeypatch):
    with HARNESSES[request.param](monkeypatch) as harness:
        yield harness


def settled(h) -> None:
    """Wait until requests the dead worker left in flight have been answered (the emulator applies some)."""
    last, stable, deadline = -1, 0, time.monotonic() + 5
    while stable < 3 and time.monotonic() < deadline:
        items = h.items()
        stable, last = (stable + 1 if items == last else 0), items
        time.sleep(0.05)


def test_crash_between_ack_and_state_write_resends_only_what_state_lacks(h, warehouse):
    n, patch, latency_ms, crash_after = CASES[h.name]
    rows = people_rows(n)
    h.write_people(warehouse, rows)
    h.faults(latency_ms=latency_ms)
    worker = start_sync(h.people, warehouse, "--failpoint", f"after_ack:{crash_after}",
                        env={"RELAY_CONCURRENCY": "3"}, patch=patch, tuning=FLUSH_OFTEN)
    outcome = finish(worker, timeout=120)
    assert outcome["exit"] == CRASH_EXIT, outcome  # it died at the failpoint, not by finishing
    settled(h)
    held = h.held()
    state = ledger_keys(warehouse, "sync_state")
    # The state never leads the destination: every row it claims is held there with that value.
    assert overclaimed(h, warehouse, held) == []
    # The window was really open: state was written before the crash, and the destination holds rows
    # (at least the crashed batch) that state does not know about.
    assert 0 < len(state) < len(held) <= n
    # Deliveries are recorded with the state, in one transaction: nothing recorded that state lacks.
    assert ledger_keys(warehouse, "sync_deliveries") == state
    assert query(warehouse, "select status from relay.sync_runs") == [("running",)]

    h.faults(latency_ms=0)
    items_before = h.items()
    rerun = h.sync(h.people, warehouse)
    # The rerun resends exactly the rows state lacked: acknowledged-but-unrecorded ones are resent
    # (idempotent at the destination), nothing state already had is sent again.
    assert (rerun.status, rerun.planned_add, rerun.acked_add, rerun.rejected) == ("succeeded", n - len(state), n - len(state), 0)
    assert h.items() - items_before == n - len(state)
    assert h.held() == h.expected(rows)
    assert len(h.state()[RECORDS[h.name]]) == n  # no record was duplicated at the destination
    assert query(warehouse, "select count(*), count(distinct record_key) from relay.sync_deliveries") == [(n, n)]
    assert query(warehouse, "select count(*) from relay.sync_state") == [(n,)]
    assert query(warehouse, "select status, count(*) from relay.sync_runs group by 1 order by 1") == [
        ("abandoned", 1), ("succeeded", 1)]


@pytest.mark.parametrize("h", ["customerio"], indirect=True)
def test_the_crash_check_catches_state_written_before_the_acknowledgement(h, warehouse):
    """Proof that the check above has teeth: an engine that records rows when it sends them (not when they
    are acknowledged), killed while its requests are still unanswered, is caught claiming undelivered rows;
    the real engine, killed at the same point, claims nothing."""
    rows = people_rows(2000)
    h.write_people(warehouse, rows)
    patch = [(customerio_adapter.__name__, "MAX_BATCH_BYTES", 8 * 1024)]
    found = {}
    for sabotage in (False, True):
        httpx.post(f"{h.server.url}/_emulator/reset", json={}).raise_for_status()
        h.faults(timeout_rate=1, timeout_s=4)  # every request stalls 4 s before it is applied
        worker = start_sync(h.people, warehouse, env={"RELAY_CONCURRENCY": "3"}, patch=patch, sabotage=sabotage)
        deadline = time.monotonic() + 30
        while h.requests() < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        found[sabotage] = (len(overclaimed(h, warehouse)), len(ledger_keys(warehouse, "sync_state")))
        h.faults(timeout_rate=0)
        con = duckdb.connect(str(warehouse))
        con.execute("delete from relay.sync_state")
        con.close()
    assert found[False] == (0, 0)  # nothing acknowledged: nothing claimed
    assert found[True][0] > 0 and found[True][0] == found[True][1]  # sabotaged: every claimed row is a lie


# ------------------------------------------------------------------------------------------ stakeholder copy
def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def marker(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select version from main.publish_marker").fetchone()[0]


def set_marker(warehouse: Path, version: str) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create or replace table main.publish_marker as select ? as version", [version])


@pytest.fixture
def published(warehouse, monkeypatch):
    """A warehouse with sample data, published once (marker v1); returns the published path."""
    from relay import publish, sample_data

    sample_data.generate(warehouse, customers=300)
    set_marker(warehouse, "v1")
    path = Path(publish.publish()["path"])
    assert marker(path) == "v1"
    return path


def relay_publish(**env) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).with_name("relay")), "publish"], cwd=ROOT,
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_sigkill_during_dbt_build_leaves_the_published_copy_readable_and_unchanged(warehouse, published):
    before = digest(published)
    work = warehouse.parent / "dbt"
    build = subprocess.Popen(
        [DBT, "build", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR),
         "--target-path", str(work / "target"), "--log-path", str(work / "logs")],
        cwd=DBT_DIR, env={**os.environ, "RELAY_WAREHOUSE": str(warehouse)}, stdout=subprocess.PIPE, text=True,
        start_new_session=True)
    built = 0
    try:
        deadline = time.monotonic() + 120
        for line in build.stdout:  # kill once dbt has written a few models: mid-build, the warehouse open
            built += " OK created " in line
            if built >= 3 or time.monotonic() > deadline:
                break
        assert marker(published) == "v1"  # stakeholders read it while dbt holds the warehouse
    finally:
        os.killpg(build.pid, signal.SIGKILL)
        build.wait()
    assert built >= 3, "dbt did not get far enough to be killed mid-build"
    assert digest(published) == before and marker(published) == "v1"
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("select count(*) from shopify.customer").fetchone()[0] > 0


def generations(published: Path) -> list[Path]:
    return sorted(published.with_name(published.name + ".generations").glob("*.duckdb"))


def test_crash_between_copy_and_swap_leaves_the_previous_copy(warehouse, published):
    before = digest(published)
    set_marker(warehouse, "v2")
    crashed = relay_publish(RELAY_FAILPOINT="publish_before_replace")
    crashed.communicate(timeout=60)
    assert crashed.returncode == CRASH_EXIT
    assert digest(published) == before and marker(published) == "v1"
    assert len(generations(published)) == 2  # the spare it wrote, never swapped in
    done = relay_publish()
    done.communicate(timeout=60)
    assert done.returncode == 0 and marker(published) == "v2"
    assert len(generations(published)) == 2


def copying(process: subprocess.Popen, published: Path) -> bool:
    """Whether `relay publish` has a generation of the copy open: it is writing it."""
    directory = str(published.with_name(published.name + ".generations"))
    try:
        return any(os.readlink(fd).startswith(directory) for fd in Path(f"/proc/{process.pid}/fd").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_sigkill_during_the_copy_and_swap_of_a_publish_leaves_a_readable_copy(warehouse, published):
    """SIGKILL `relay publish` once its copy has begun, at growing delays (mid-copy, mid-fsync, around the
    swap), each time with tens of megabytes changed: the stakeholder copy is always a complete database, the
    previous snapshot or the new one, and the generation a kill left half-written is repaired by the next."""
    set_marker(warehouse, "v2")
    kills_mid_copy, seen = 0, []
    for round_, delay in enumerate((0, 0, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08)):
        with duckdb.connect(str(warehouse)) as con:  # tens of MB of new blocks, so the copy takes a while
            con.execute("create or replace table main.ballast as select i, md5(cast(i + ? as varchar)) as h "
                        "from range(2000000) t(i)", [round_])
        process = relay_publish()
        deadline = time.monotonic() + 30
        while process.poll() is None and not copying(process, published) and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(delay)
        mid_copy = copying(process, published)
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills_mid_copy += mid_copy and process.returncode == -signal.SIGKILL
        version = marker(published)  # opens, so the file is a complete database
        seen.append(version)
        assert version in ("v1", "v2")
    assert kills_mid_copy >= 3 and "v1" in seen, seen
    done = relay_publish()
    done.communicate(timeout=60)
    assert done.returncode == 0 and marker(published) == "v2"
    contents = "select count(*), sum(hash(i, h)) from main.ballast"
    with duckdb.connect(str(published), read_only=True) as copy, duckdb.connect(str(warehouse), read_only=True) as source:
        assert copy.execute(contents).fetchone() == source.execute(contents).fetchone()
    assert len(generations(published)) == 2
