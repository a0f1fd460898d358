"""The emulators as a tool: where they listen is one setting shared by server and clients, `relay emulators`
takes the address as options, the CLI reuses only emulators it can use (this data directory's, accepting this
process's credentials) and otherwise starts its own (on free ports when the configured ones are taken), and a
sync in emulator mode with nothing listening fails at once, naming the address and `relay emulators`.

Real processes and real HTTP over loopback. The `relay sync` runs use a one-model manifest (as
test_concurrency does), so no dbt build is needed; the two concurrent demos are the only slow test here."""

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb
import httpx
import pytest

from emulators.persistence import read_saved
from support.cordial_syncs import PEOPLE, people, write
from support.emulators import NAMES, CordialConfig, RateLimit, emulator_command, start, wait_until_answering
from support.ports import free_ports
from support.project import ROOT

RELAY = str(Path(sys.executable).with_name("relay"))
OTHER_KEY = "cordial-OTHER-KEY-5e1d9c"  # an emulator started with credentials this process does not use


@contextmanager
def configured_ports(monkeypatch):
    """The ports the CLI is configured with: 8701-8703 when free, so that these tests meet the defaults a user
    meets (and would have caught the old code, which knew no others); else free ones, set through
    RELAY_EMULATOR_BASE_PORT. The tests using the defaults take turns (a lock file), whatever the xdist worker."""
    with open(Path(tempfile.gettempdir()) / "relay-tests-default-emulator-ports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        defaults = [8701, 8702, 8703]
        sockets = []
        try:
            for port in defaults:
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            defaults = free_ports()
            monkeypatch.setenv("RELAY_EMULATOR_BASE_PORT", str(defaults[0]))
        finally:
            for sock in sockets:
                sock.close()
        yield defaults


def info(url: str) -> dict:
    return httpx.get(f"{url}/_emulator/info", timeout=2).json()


@contextmanager
def emulators_process(*args: str, env: dict | None = None, command=None):
    """`relay emulators` (or `command`) in a process of its own; at exit, SIGTERM, and its output in `.output`."""
    command = command or [RELAY, "emulators"]
    process = subprocess.Popen([*command, *args], cwd=ROOT, env={**os.environ, **(env or {})},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.output = process.communicate(timeout=20)


def port_env(ports: list[int], host: str = "127.0.0.1") -> dict[str, str]:
    return {"RELAY_EMULATOR_HOST": host, **{f"RELAY_EMULATOR_{n.upper()}_PORT": str(p) for n, p in zip(NAMES, ports)}}


# ------------------------------------------------------------------------------------------ one address setting
def test_relay_emulators_base_port_serves_three_consecutive_ports_and_names_the_client_setting(tmp_path):
    base = free_ports()[0]
    with emulators_process("--base-port", str(base), "--record-requests") as process:
        urls = [f"http://127.0.0.1:{base + i}" for i in range(3)]
        wait_until_answering(urls, process)
        assert [info(url)["emulator"] for url in urls] == ["CustomerIO", "Cordial", "TalonOne"]
        # relay emulators keeps this data directory's state; options of python -m emulators pass through.
        assert {info(url)["state_dir"] for url in urls} == {str(tmp_path / "data" / "emulators")}
        assert httpx.get(f"{urls[1]}/_emulator/requests").json() == []
        # The same ports again: one clear line, no traceback, a distinct exit code.
        busy = subprocess.run([RELAY, "emulators", "--base-port", str(base)], cwd=ROOT, capture_output=True, text=True,
                              timeout=30)
        assert busy.returncode == 75, busy.stderr
        assert f"cannot listen on 127.0.0.1:{base}: the address is in use" in busy.stderr
        assert "Traceback" not in busy.stderr and "--base-port" in busy.stderr
    assert process.returncode == 0
    # It told how to point the clients at it (they call 8701-8703 unless told otherwise).
    assert f"give them RELAY_EMULATOR_HOST=127.0.0.1 RELAY_EMULATOR_BASE_PORT={base}" in process.output[1]


def test_one_setting_decides_where_server_listens_and_clients_call(warehouse, monkeypatch):
    """RELAY_EMULATOR_HOST and RELAY_EMULATOR_BASE_PORT, read by the server's defaults and by emulator_url()."""
    from relay import config, emulator_process
    from sinks import destinations

    host = "127.0.0.2"  # any loopback address: not the server's old hard-coded default
    base = free_ports(host=host)[0]
    monkeypatch.setenv("RELAY_EMULATOR_HOST", host)
    monkeypatch.setenv("RELAY_EMULATOR_BASE_PORT", str(base))
    with emulators_process() as process:  # no options: the environment only
        urls = [config.emulator_url(name) for name in NAMES]
        assert urls == [f"http://{host}:{base + i}" for i in range(3)]
        wait_until_answering(urls, process)
        pid = info(urls[0])["pid"]
        # The CLI finds and reuses them: this data directory's, with this process's (demo) credentials.
        assert [emulator_process.probe_emulator(name, url) for name, url in zip(NAMES, urls)] == [("usable", str(pid))] * 3
        with emulator_process.running_emulators():
            assert [config.emulator_url(name) for name in NAMES] == urls
        assert process.poll() is None and info(urls[0])["pid"] == pid
        # A sync through the adapters reaches them.
        write(warehouse, PEOPLE, people(0, 3))
        from sinks.engine import SyncRun

        result = SyncRun(PEOPLE, destinations.build("cordial"), warehouse).execute()
        assert (result.status, result.acked) == ("succeeded", 3)


# ------------------------------------------------------------------------------------------ what the CLI reuses
def test_an_emulator_with_other_credentials_is_never_reused(tmp_path, monkeypatch):
    from relay import config, emulator_process
    from sinks import destinations

    other = {"CORDIAL_API_KEY": OTHER_KEY, "RELAY_DATA_DIR": str(tmp_path / "other")}
    # Another data directory's emulators, with another Cordial key, on the configured ports: not reused, and not
    # in the way either: this process gets its own on free ports, and its clients call those.
    with configured_ports(monkeypatch) as ports, \
            emulators_process(env=other, command=emulator_command(dict(zip(NAMES, ports)), "--state-dir",
                                                                  other["RELAY_DATA_DIR"])) as foreign:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        wait_until_answering(urls, foreign)
        with emulator_process.running_emulators():
            mine = [config.emulator_url(name) for name in NAMES]
            assert set(mine).isdisjoint(urls)
            assert {info(url)["state_dir"] for url in mine} == {str(tmp_path / "data" / "emulators")}
            key = destinations.emulator_credential_checks("cordial")["api"][1]
            assert httpx.get(f"{mine[1]}/v2/accountlists", headers={"Authorization": key}).status_code == 200
        assert [config.emulator_url(name) for name in NAMES] == urls  # the environment is restored
        assert emulator_process.probe_emulator("cordial", urls[1])[0] == "other"

    # This data directory's emulators, started with another key: never used, and not doubled (a second set would
    # write the same state files): a clear error naming the variable and the command, never the key.
    monkeypatch.setenv("RELAY_EMULATOR_BASE_PORT", str(free_ports()[0]))
    urls = [config.emulator_url(name) for name in NAMES]
    with emulators_process(env={"CORDIAL_API_KEY": OTHER_KEY}) as stale:
        wait_until_answering(urls, stale)
        assert emulator_process.probe_emulator("cordial", urls[1]) == ("refuses", "CORDIAL_API_KEY")
        assert emulator_process.probe_emulator("customerio", urls[0])[0] == "usable"
        with pytest.raises(RuntimeError) as refused:
            with emulator_process.running_emulators():
                pytest.fail("reused an emulator that refuses this process's credentials")
        message = str(refused.value)
        assert "CORDIAL_API_KEY" in message and "relay emulators" in message and OTHER_KEY not in message
        assert "demo-cordial-key" not in message


def test_a_port_held_by_something_else_gets_own_emulators_on_free_ports_without_traceback(tmp_path, monkeypatch):
    script = ("import httpx, json; from relay import config, emulator_process; from sinks import destinations as d\n"
              "with emulator_process.running_emulators():\n"
              "    urls = {n: config.emulator_url(n) for n in ('customerio', 'cordial', 'talon_one')}\n"
              "    key = d.emulator_credential_checks('cordial')['api'][1]\n"
              "    status = httpx.get(urls['cordial'] + '/v2/accountlists', headers={'Authorization': key}).status_code\n"
              "    print(json.dumps({'urls': urls, 'status': status}))\n")
    with configured_ports(monkeypatch) as ports:
        holder = socket.socket()  # listens, accepts connections, never answers
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", ports[1]))
        holder.listen()
        try:
            started = time.monotonic()
            result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=os.environ.copy(), capture_output=True,
                                    text=True, timeout=60)
            elapsed = time.monotonic() - started
        finally:
            holder.close()
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    answer = json.loads(result.stdout)
    assert answer["urls"]["cordial"] != f"http://127.0.0.1:{ports[1]}" and answer["status"] == 200
    assert f"port {ports[1]} has something that is not a Relay emulator" in result.stderr
    assert elapsed < 15


# ------------------------------------------------------------------------------------------ sync with no emulator
@pytest.fixture
def one_sync(tmp_path, warehouse, monkeypatch) -> Path:
    """A manifest with one Cordial sync model (no dbt needed) and its table in the warehouse."""
    spec = PEOPLE
    node = {"resource_type": "model", "name": spec.name, "schema": "syncs", "alias": spec.relation.split(".")[1],
            "columns": {c: {"data_type": t} for c, t in spec.columns.items()},
            "config": {"meta": {"sync": {"destination": "cordial", "object": "attributes", "primary_key": ["customer_key"],
                                         "identifier": "email", "on_exit": "clear", "schedule": "frequent"}}}}
    (tmp_path / "project" / "target").mkdir(parents=True)
    (tmp_path / "project" / "target" / "manifest.json").write_text(json.dumps({"nodes": {f"model.test.{spec.name}": node}}))
    monkeypatch.setenv("RELAY_DBT_PROJECT_DIR", str(tmp_path / "project"))
    monkeypatch.setenv("RELAY_EMULATOR_BASE_PORT", str(free_ports()[0]))  # nothing listens there
    write(warehouse, spec, people(0, 5))
    return warehouse


def relay(*args: str, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run([RELAY, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, **env})
    return result, time.monotonic() - started


def test_sync_with_no_emulator_fails_at_once_naming_address_and_command(one_sync, monkeypatch):
    cordial = f"http://127.0.0.1:{int(os.environ['RELAY_EMULATOR_BASE_PORT']) + 1}"
    result, elapsed = relay("sync", RELAY_EMULATOR_AUTOSTART="0")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"nothing is listening at {cordial}" in lines[0] and "`relay emulators`" in lines[0]
    assert elapsed <= 2.0, f"took {elapsed:.1f}s"

    # The path Dagster runs (make dev: an asset calls pipeline.run_sync): the same, in this process.
    from relay import pipeline
    from sinks.http import EmulatorUnreachable

    started = time.monotonic()
    with pytest.raises(EmulatorUnreachable, match="relay emulators"):
        pipeline.run_sync(PEOPLE)
    assert time.monotonic() - started <= 2.0
    with duckdb.connect(str(one_sync), read_only=True) as con:
        assert con.execute("select status, message like '%nothing is listening at%' from relay.sync_runs "
                           "order by started_at").fetchall() == [("failed", True)] * 2


def test_sync_starts_the_emulators_when_none_answer_and_stops_them_after(one_sync, tmp_path):
    result, _ = relay("sync")
    assert result.returncode == 0, result.stderr
    assert "relay: started the emulators of" in result.stderr and "Traceback" not in result.stderr
    state = read_saved(tmp_path / "data" / "emulators" / "cordial.json")[0]
    assert len(state["contacts"]) == 5
    base = int(os.environ["RELAY_EMULATOR_BASE_PORT"])
    with pytest.raises(httpx.ConnectError):  # stopped with the command
        httpx.get(f"http://127.0.0.1:{base + 1}/_emulator/info")
    # A plan sends nothing, so it starts nothing.
    result, _ = relay("plan")
    assert result.returncode == 0 and "started the emulators" not in result.stderr


def test_refused_mid_run_fails_fast_in_emulator_mode_and_retries_live_with_one_log_line(caplog, monkeypatch):
    import asyncio
    import logging

    from sinks.http import EmulatorUnreachable, HttpClient, Request, RetriesExhausted

    server = start(CordialConfig(api_key="k", port=0, rate_limits={"api": RateLimit(0)}))
    url = server.url

    async def send(**kwargs):
        async with HttpClient(url, auth_headers={}, account="t", rates={"default": 1000}, backoff_base_s=0.01,
                              **kwargs) as client:
            server.stop()  # it dies after the client was opened
            return await client.send(Request("GET", "/v2/accountlists"))

    started = time.monotonic()
    with pytest.raises(EmulatorUnreachable, match=f"nothing is listening at {url}"):
        asyncio.run(send())
    assert time.monotonic() - started < 2

    # A live host keeps its retries; the repeated error is logged once, and counted in the final message.
    monkeypatch.setenv("RELAY_DESTINATIONS", "live")
    server = start(CordialConfig(api_key="k", port=0, rate_limits={"api": RateLimit(0)}))
    url = server.url
    with caplog.at_level(logging.DEBUG, logger="relay.http"):
        with pytest.raises(RetriesExhausted, match="failed 4 times; last: ConnectError") as exhausted:
            asyncio.run(send(max_attempts=4))
    assert not isinstance(exhausted.value, EmulatorUnreachable)
    assert len([r for r in caplog.records if "ConnectError" in r.getMessage()]) == 1


# ------------------------------------------------------------------------------------------ two demos at once
@pytest.mark.e2e
def test_two_demos_in_two_data_directories_at_the_same_time(tmp_path):
    """Both find the configured ports free or taken by the other's emulators; each ends with its own."""
    base = free_ports()[0]
    runs = {}
    for name in ("one", "two"):
        root = tmp_path / name
        env = {**os.environ, "RELAY_DATA_DIR": str(root / "data"), "RELAY_WAREHOUSE": str(root / "data" / "warehouse.duckdb"),
               "DAGSTER_HOME": str(root / "dagster_home"), "RELAY_EMULATOR_BASE_PORT": str(base)}
        runs[name] = subprocess.Popen([RELAY, "demo", "--customers", "300"], cwd=ROOT, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    started = time.monotonic()
    outputs = {name: process.communicate(timeout=600)[0] for name, process in runs.items()}
    elapsed = time.monotonic() - started
    for name, process in runs.items():
        assert process.returncode == 0, outputs[name][-5000:]
        assert "failed" not in outputs[name].split("== syncs in this run")[1], outputs[name][-3000:]
        state = read_saved(tmp_path / name / "data" / "emulators" / "customerio.json")[0]
        assert state["people"], name
    print(f"two concurrent demos (300 customers each): {elapsed:.0f}s")


def test_emulators_with_a_large_saved_state_get_the_time_to_load_it(tmp_path, monkeypatch):
    """A data directory that synced many people leaves a large state; the emulators a command starts must get the
    time to load it (at a million people it took longer than the fixed allowance, and every run failed)."""
    from emulators.customerio_state import CustomerIOState
    from relay import emulator_process

    people = {f"cio_{i}": {"id": f"user-{i}", "email": f"u{i}@example.com", "attributes": {"first_name": "x" * 40}}
              for i in range(60_000)}
    state = {**CustomerIOState().to_json(), "people": people, "next_person": len(people) + 1}  # the emulator's own format
    directory = emulator_process.state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "customerio.json").write_text(json.dumps(state))
    size = (directory / "customerio.json").stat().st_size
    monkeypatch.setattr(emulator_process, "STARTUP_TIMEOUT_S", 0)  # no allowance of its own: only the state's
    monkeypatch.setattr(emulator_process, "STATE_LOAD_BYTES_PER_S", size / 60)  # this state: a minute more

    process = emulator_process._start_emulators("127.0.0.1", dict(zip(NAMES, free_ports())))
    try:
        url = f"http://127.0.0.1:{process.args[process.args.index('--customerio-port') + 1]}"
        assert info(url)["state_file"].endswith("customerio.json")
    finally:
        emulator_process._stop(process)

    for saved in directory.glob("*.json"):  # nothing to load: the fixed allowance alone, which is too short
        saved.unlink()
    with pytest.raises(RuntimeError, match=r"did not start within 0 s \(saved state: [0-9]+ MB\)"):
        emulator_process._stop(emulator_process._start_emulators("127.0.0.1", dict(zip(NAMES, free_ports()))))
