"""Concurrency: syncs in several processes share one destination account's rate budget, runs never write
the warehouse at the same time, and stakeholders can query the published copy while a run holds it.

Every process here is a real one (the budget is shared through a file under RELAY_DATA_DIR, the warehouse
lock is DuckDB's file lock, the run queue is the Dagster instance configured by the project's dagster.yaml)."""

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import duckdb
import httpx
import pytest

from sinks.declarations import SyncSpec
from sinks.http import RateLimiter, budget_dir, shared_limiter
from support.cordial_syncs import AUDIENCE, MEMBERS, PEOPLE, members, people, write
from support.emulators import CordialConfig, RateLimit, start
from support.project import ROOT
from support.sync_process import finish, start_sync, sync_command

CORDIAL_KEY = "cordial-SECRET-c0nc-9f8e7d"


def finished(process: subprocess.Popen) -> dict:
    """The result of a sync process started with --wait, which must have ended well."""
    result = finish(process, timeout=120)
    assert result["exit"] == 0, result
    return result


class Cordial:
    """A Cordial emulator in this process (the syncs run in others) and the environment pointing at it."""

    def __init__(self, monkeypatch, limit: int = 0, client_rate_per_s: float = 1e6) -> None:
        window = {"api": RateLimit(limit, 1, per_route=False, headers=True)}  # one budget for the whole account
        self.server = start(CordialConfig(api_key=CORDIAL_KEY, port=0, rate_limits=window))
        monkeypatch.setenv("CORDIAL_API_URL", self.server.url)
        monkeypatch.setenv("CORDIAL_API_KEY", CORDIAL_KEY)
        monkeypatch.setenv("CORDIAL_RATE_LIMIT_PER_MIN", str(client_rate_per_s * 60))
        monkeypatch.setenv("CORDIAL_IMPORT_MIN_ROWS", "1000000000")  # one request per contact, whatever the size

    def stats(self) -> dict:
        return httpx.get(f"{self.server.url}/_emulator/stats").json()

    def state(self) -> dict:
        return httpx.get(f"{self.server.url}/_emulator/state").json()

    def faults(self, **settings) -> None:
        httpx.post(f"{self.server.url}/_emulator/faults", json=settings).raise_for_status()

    def contacts(self) -> dict[str, dict]:
        return {c["email"]: c["attributes"] for c in self.state()["contacts"].values()}

    def list_members(self, name: str) -> set[str]:
        state = self.state()
        return {state["contacts"][cid]["email"] for lst in state["lists"].values() if lst["name"] == name
                for cid in lst["members"]}


@pytest.fixture
def cordial_factory(monkeypatch):
    servers = []

    def make(**kwargs) -> Cordial:
        servers.append(Cordial(monkeypatch, **kwargs))
        return servers[-1]

    yield make
    for emulator in servers:
        emulator.server.stop()


# ------------------------------------------------------------------------------------------ the shared rate budget
BUDGET_SCRIPT = """
import asyncio, sys, time
from sinks.http import shared_limiter
limiter = shared_limiter("cordial:api.example", "default", float(sys.argv[1]))
start, seconds = float(sys.argv[2]), float(sys.argv[3])
async def main():
    taken = 0
    while time.time() < start:
        await asyncio.sleep(0.005)
    while True:
        await limiter.acquire()
        if time.time() >= start + seconds:
            return taken
        taken += 1
print(asyncio.run(main()))
"""


def test_processes_drawing_on_one_account_share_one_budget():
    rate, seconds = 50.0, 2.0
    start = time.time() + 4.0  # both processes are up by then, also on a loaded 2-core machine
    processes = [subprocess.Popen([sys.executable, "-c", BUDGET_SCRIPT, str(rate), str(start), str(seconds)],
                                  cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    taken = [int(p.communicate(timeout=30)[0]) for p in processes]
    burst = rate / 10
    # Two budgets would allow twice this; the shared one allows its rate plus one burst, and is used up.
    assert 0.85 * rate * seconds <= sum(taken) <= rate * seconds + burst + 1, taken
    assert min(taken) > 0.25 * rate * seconds, f"one process starved the other: {taken}"


def test_a_429_in_one_process_halves_the_rate_and_pauses_every_process():
    subprocess.run([sys.executable, "-c", "from sinks.http import shared_limiter; "
                    "shared_limiter('cordial:api.example', 'default', 100.0).throttled(2.0)"], cwd=ROOT, check=True)
    limiter = shared_limiter("cordial:api.example", "default", 100.0)
    assert limiter.rate == 50.0
    started = time.monotonic()
    asyncio.run(limiter.acquire())
    assert 1.0 < time.monotonic() - started < 2.5  # what is left of the other process's Retry-After pause


def test_the_budget_file_names_no_account_and_costs_microseconds():
    limiter = shared_limiter("customerio:site-7f3a@http://127.0.0.1:1", "default", 1e9)

    async def take(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            await limiter.acquire()
        return (time.perf_counter() - started) / n

    per_acquire = asyncio.run(take(2000))
    assert per_acquire < 0.0005, f"{per_acquire * 1e6:.0f} µs per acquire"
    files = list(budget_dir().iterdir())
    assert [f.name for f in files] == [limiter.path.name] and len(limiter.path.name) == len("0" * 32 + ".bucket")
    assert files[0].stat().st_size == 40 and b"site-7f3a" not in files[0].read_bytes()


def test_limiters_without_a_usable_file_fall_back_to_their_own_budget(tmp_path):
    (tmp_path / "not_a_dir").write_text("")
    limiter = RateLimiter(100.0, path=tmp_path / "not_a_dir" / "x.bucket")
    asyncio.run(limiter.acquire())
    assert limiter.path is None and limiter.rate == 100.0


R = 40  # the emulator's limit for the whole account, requests per second
CLIENT_RATE = 32  # what each sync process is configured with: the usual headroom under the vendor's limit
ROWS = 80


def test_two_sync_processes_to_one_account_stay_within_its_limit_together(tmp_path, cordial_factory):
    """Alone, each process may send CLIENT_RATE requests/s; two unshared budgets would send 2 x 32 > R = 40
    and draw 429s. Shared, the emulator sees at most R in any second and refuses nothing."""
    cordial = cordial_factory(limit=R, client_rate_per_s=CLIENT_RATE)
    # DuckDB allows one writer per file: two processes syncing at once read two warehouses (two projects,
    # or staging and production, sharing a destination account).
    warehouses = {spec.name: tmp_path / f"{spec.name}.duckdb" for spec in (PEOPLE, MEMBERS)}
    write(warehouses[PEOPLE.name], PEOPLE, people(0, ROWS))
    write(warehouses[MEMBERS.name], MEMBERS, members(ROWS, 2 * ROWS))
    processes = [start_sync(spec, warehouses[spec.name], "--wait") for spec in (PEOPLE, MEMBERS)]
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    results = [finished(p) for p in processes]

    assert [(r["status"], r["acked_add"]) for r in results] == [("succeeded", ROWS), ("succeeded", ROWS)]
    overlap = min(r["finished"] for r in results) - max(r["started"] for r in results)
    assert overlap > 0.6 * min(r["finished"] - r["started"] for r in results), "the syncs did not run at the same time"
    stats = cordial.stats()
    assert stats["by_status"].get("429", 0) == 0, stats["by_status"]
    assert stats["peak_per_second"] <= R, stats
    assert stats["requests"] >= 2 * ROWS
    contacts = cordial.contacts()
    assert all(contacts[r["email"]] == {"orders_count": r["orders_count"], "vip_tier": r["vip_tier"]}
               for r in people(0, ROWS))
    assert cordial.list_members(AUDIENCE) == {r["email"] for r in members(ROWS, 2 * ROWS)}


# ------------------------------------------------------------------------------------------ one writer at a time
JOBS = '''
import os, time
import dagster as dg
import duckdb


def mark(run_id, event):
    con = duckdb.connect(os.environ["RELAY_WAREHOUSE"])
    con.execute("create table if not exists run_log (run_id varchar, event varchar, logged_at timestamp default now())")
    con.execute("insert into run_log (run_id, event) values (?, ?)", [run_id, event])
    return con


@dg.op
def hold_the_warehouse(context):
    """Stands in for a run that writes the warehouse: holds it open until the test releases the run."""
    con = mark(context.run_id, "start")
    flag = os.path.join(os.environ["RELAY_TEST_RELEASE_DIR"], context.run_id)
    open(flag + ".holding", "w").close()
    deadline = time.monotonic() + 90
    while not os.path.exists(flag):
        if time.monotonic() > deadline:
            raise TimeoutError("the test never released this run")
        time.sleep(0.05)
    con.execute("insert into run_log (run_id, event) values (?, 'end')", [context.run_id])
    con.close()


@dg.job
def warehouse_writer():
    hold_the_warehouse()


defs = dg.Definitions(jobs=[warehouse_writer])
'''


def test_dagster_queues_a_second_run_until_the_first_finishes(tmp_path, monkeypatch):
    """The instance the project configures (dagster.yaml through DAGSTER_HOME, as `relay` sets it up) queues
    runs: its run-queue daemon launches the second only once the first has ended."""
    import dagster as dg
    from dagster._core.storage.dagster_run import DagsterRunStatus as Status
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import PythonFileTarget
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    from relay import config

    config.export_environment()  # DAGSTER_HOME (a temporary one here) gets the project's dagster.yaml
    assert (config.dagster_home() / "dagster.yaml").resolve() == ROOT / "dagster.yaml"
    (tmp_path / "jobs.py").write_text(JOBS)
    release = tmp_path / "release"
    release.mkdir()
    monkeypatch.setenv("RELAY_TEST_RELEASE_DIR", str(release))
    warehouse = config.warehouse_path()

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
        target = PythonFileTarget(python_file=str(tmp_path / "jobs.py"), attribute=None,
                                  working_directory=str(tmp_path), location_name="warehouse_writers")
        with create_test_daemon_workspace_context(target, instance) as workspace:
            entry = next(iter(workspace.create_request_context().get_code_location_entries().values()))
            assert entry.code_location, entry.load_error
            remote_job = next(iter(entry.code_location.get_repositories().values())).get_full_job("warehouse_writer")
            namespace: dict = {}
            exec(compile(JOBS, str(tmp_path / "jobs.py"), "exec"), namespace)
            run_ids = []
            for _ in range(2):
                run = instance.create_run_for_job(namespace["warehouse_writer"], remote_job_origin=remote_job.get_remote_origin(),
                                                  job_code_origin=remote_job.get_python_origin())
                instance.submit_run(run.run_id, workspace.create_request_context())
                run_ids.append(run.run_id)
            first, second = run_ids

            def status(run_id):
                return instance.get_run_by_id(run_id).status

            def wait_for(run_id, statuses, timeout=60):
                deadline = time.monotonic() + timeout
                while status(run_id) not in statuses:
                    assert time.monotonic() < deadline, f"run {run_id} is {status(run_id)}"
                    time.sleep(0.1)

            assert (status(first), status(second)) == (Status.QUEUED, Status.QUEUED)
            daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
            list(daemon.run_iteration(workspace))
            assert status(first) in (Status.STARTING, Status.STARTED) and status(second) == Status.QUEUED
            wait_for(first, (Status.STARTED,))
            deadline = time.monotonic() + 30
            while not (release / f"{first}.holding").exists():  # the first run now holds the warehouse
                assert time.monotonic() < deadline, status(first)
                time.sleep(0.1)
            for _ in range(2):  # however often the daemon looks, the second run waits
                list(daemon.run_iteration(workspace))
                assert status(second) == Status.QUEUED
            (release / first).touch()
            wait_for(first, (Status.SUCCESS,))
            list(daemon.run_iteration(workspace))
            assert status(second) in (Status.STARTING, Status.STARTED, Status.SUCCESS)
            (release / second).touch()
            wait_for(second, (Status.SUCCESS,))
    log = duckdb.connect(str(warehouse), read_only=True).execute("select run_id, event from run_log order by logged_at").fetchall()
    assert log == [(first, "start"), (first, "end"), (second, "start"), (second, "end")]


def test_while_a_sync_holds_the_warehouse_writers_get_a_clear_error_and_stakeholders_read_the_copy(
        warehouse, cordial_factory, monkeypatch):
    from relay.publish import connect_published, publish

    rows = 200
    cordial = cordial_factory()
    write(warehouse, PEOPLE, people(0, rows))
    write(warehouse, MEMBERS, members(0, 10))
    publish()
    cordial.faults(latency_ms=40)
    monkeypatch.setenv("RELAY_CONCURRENCY", "2")  # about 4 s of delivery
    holder = start_sync(PEOPLE, warehouse, "--wait")
    holder.stdin.write("go\n")
    holder.stdin.flush()
    deadline = time.monotonic() + 30
    while cordial.stats()["items"].get("POST /v2/contacts", 0) < 10:  # delivering: the warehouse is held
        assert time.monotonic() < deadline and holder.poll() is None, holder.stderr.read()
        time.sleep(0.05)

    # A second writer (another sync, e.g. `relay sync` next to a Dagster run) is refused at once, by name.
    started = time.monotonic()
    second = subprocess.run(sync_command(MEMBERS, warehouse, "--wait"), cwd=ROOT, input="go\n", capture_output=True, text=True, timeout=60)
    assert second.returncode != 0 and time.monotonic() - started < 20
    # DuckDB names the file itself (tests/conftest.py reaches it through a link to the test's directory).
    assert "Could not set lock on file" in second.stderr and str(warehouse.resolve()) in second.stderr
    assert f"PID {holder.pid}" in second.stderr  # it names the process holding the warehouse
    # Even a reader is refused the working file; the published copy answers.
    with pytest.raises(duckdb.IOException, match="lock"):
        duckdb.connect(str(warehouse), read_only=True)
    with connect_published() as con:
        assert con.execute(f"select count(*) from {PEOPLE.relation}").fetchone() == (rows,)
    assert holder.poll() is None, "the sync ended before the checks ran: they proved nothing"

    result = finished(holder)
    assert (result["status"], result["acked_add"]) == ("succeeded", rows)
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("select sync_name, status from relay.sync_runs").fetchall() == [(PEOPLE.name, "succeeded")]
    assert con.execute("select count(*) from relay.sync_state").fetchone() == (rows,)
    con.close()
    assert len(cordial.contacts()) == rows


def test_the_cli_says_in_one_line_that_a_run_holds_the_warehouse(warehouse):
    holder = duckdb.connect(str(warehouse))  # as a Dagster run would
    try:
        result = subprocess.run([str(Path(sys.executable).with_name("relay")), "status"], capture_output=True, text=True,
                                env={**os.environ, "RELAY_WAREHOUSE": str(warehouse)}, timeout=60)
    finally:
        holder.close()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "the warehouse is in use by another process" in result.stderr and "relay query" in result.stderr


# ------------------------------------------------------------------------------------------ exit codes
def test_plan_sync_and_status_exit_non_zero_while_a_sync_is_unhealthy(warehouse, cordial_factory, tmp_path, monkeypatch):
    """The README: `plan`, `sync` and `status` (with or without --json) exit non-zero when a run failed, was
    refused, or left rows unacknowledged; status judges the latest run of each sync."""
    others = SyncSpec(**{**asdict(PEOPLE), "name": "sync_test__others", "relation": "syncs.others"})
    nodes = {f"model.test.{s.name}": {
        "resource_type": "model", "name": s.name, "schema": "syncs", "alias": s.relation.split(".")[1],
        "columns": {c: {"data_type": t} for c, t in s.columns.items()},
        "config": {"meta": {"sync": {"destination": "cordial", "object": "attributes", "primary_key": ["customer_key"],
                                      "identifier": "email", "on_exit": "clear", "schedule": "frequent"}}}}
        for s in (PEOPLE, others)}
    (tmp_path / "project" / "target").mkdir(parents=True)
    (tmp_path / "project" / "target" / "manifest.json").write_text(json.dumps({"nodes": nodes}))
    monkeypatch.setenv("RELAY_DBT_PROJECT_DIR", str(tmp_path / "project"))
    cordial_factory()

    def relay(*args: str, **env: str) -> int:
        result = subprocess.run([str(Path(sys.executable).with_name("relay")), *args], capture_output=True, text=True,
                                env={**os.environ, **env}, timeout=120)
        if "--json" in args:
            json.loads(result.stdout)  # still one document
        return result.returncode

    def status() -> tuple[int, int]:
        return relay("status"), relay("status", "--json")

    write(warehouse, PEOPLE, people(0, 5))
    write(warehouse, others, people(0, 5))
    assert relay("sync") == 0 and status() == (0, 0)
    # A failed run (a wrong key), then another sync's run succeeds: the newest row is healthy, the sync is not.
    write(warehouse, PEOPLE, people(1, 6))
    assert relay("sync", PEOPLE.name, "--json", CORDIAL_API_KEY="wrong-key") == 1
    write(warehouse, others, people(1, 6))
    assert relay("sync", others.name) == 0
    assert status() == (1, 1)
    assert relay("sync", PEOPLE.name) == 0 and status() == (0, 0)  # succeeded after the failure: healthy
    # Rows left unacknowledged by a run that acknowledged others ('partial'). A ledger row: making the engine
    # leave it needs retries exhausted on some requests only (seconds of backoff, and luck).
    con = duckdb.connect(str(warehouse))
    con.execute("insert into relay.sync_runs (run_id, sync_name, destination, mode, status, started_at, planned_add, "
                "acked_add, rejected, unsent) values ('partial', ?, 'cordial', 'apply', 'partial', now() + interval 1 hour, "
                "5, 3, 0, 2)", [others.name])
    con.close()
    assert status() == (1, 1)
    con = duckdb.connect(str(warehouse))
    con.execute("delete from relay.sync_runs where run_id = 'partial'")
    con.close()
    # Refused (duplicate keys): by plan and by sync.
    write(warehouse, others, people(1, 6) + people(1, 2))
    assert relay("plan", others.name) == 1 and relay("plan", others.name, "--json") == 1
    assert status() == (1, 1)  # the next delivery would be refused too
    assert relay("sync", others.name, "--json") == 1 and status() == (1, 1)
    write(warehouse, others, people(1, 6))
    assert relay("sync", others.name) == 0 and status() == (0, 0)
