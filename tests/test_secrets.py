"""No secret, anywhere, after the whole pipeline ran, failures included; no customer email or phone in logs.

The Dagster job daily_full runs in process (as `relay demo` does) on 300 generated customers against the
three emulators, which are configured with distinctive fake keys taken from the same environment variables
the destination adapters read. The first run meets failures: a wrong Cordial key (every Cordial sync is
refused with 401 and the run fails), injected 5xx at Customer.io and Talon.One (retried), a 10 KB name that
Customer.io rejects (a rejection with its reason in the ledger). The run-failure sensor records it (alert
file and webhook). The second run re-runs what failed with the right key (Cordial's syncs) and publishes the
stakeholder copy. Then every place text can end up is scanned for the keys (raw, and as the Basic-auth encodings sent
in headers): Python logging at DEBUG, captured stdout/stderr (Python and file-descriptor level, so also
subprocesses), the dbt logs and artifacts of the runs, every table of every schema of the warehouse and of
the published copy (relay.* ledger included), the Dagster event log (records with their metadata, and every
file under DAGSTER_HOME), everything else under the data directory (alert file, rate budgets), the alert
webhook's requests, and what the emulators captured (/_emulator/state, /_emulator/stats).

Covered elsewhere and not repeated: the emulators refuse bad credentials on every route family
(test_emulators.py::test_customerio_auth_per_route_family, ::test_cordial_auth,
::test_talon_auth_and_error_shape) and never echo them (::test_credentials_never_leave_the_emulators);
one sync per destination leaves no key in caplog or the ledger (test_sync_engine.py::test_no_secret_reaches_logs_or_ledger).

(*) Not the whole job again: dbt need not run twice.

The pipeline runs once per session (by whichever xdist worker gets to it first, see support/shared_builds.py);
what it left is written to files the tests read.
"""

import asyncio
import base64
import contextlib
import io
import json
import logging
import os
import stat
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pytest

from support.project import DBT_DIR
from support.emulators import CordialConfig, RateLimit, destination_env, serve_emulators, start
from support.raw_rows import customer, insert
from support.shared_builds import artifact, shared

pytestmark = pytest.mark.slow

SITE_ID = "site-relaytest-4c2e"
KEYS = {
    "CUSTOMERIO_TRACK_API_KEY": "cio-track-KEY-7d1e0c95a4f3",
    "CUSTOMERIO_APP_API_KEY": "cio-app-KEY-3f8b2a61c0d9",
    "CORDIAL_API_KEY": "cordial-KEY-5c9e1b7a24e8",
    "TALON_ONE_INTEGRATION_KEY": "talon-int-KEY-b83f0d9e51a2",
    "TALON_ONE_MANAGEMENT_KEY": "talon-mgmt-KEY-2e6a4c8f17b5",
}
WRONG_CORDIAL_KEY = "cordial-WRONG-KEY-9a7b6c5d4e3f"
LONG_NAME = "N" * 10_240


def needles() -> dict[str, str]:
    """Every form a key could leak in: as is, its random core (a cut-off key), and the Authorization header
    encodings the adapters send (Basic site:key for Customer.io, Basic key: for Cordial)."""
    found = {}
    for name, key in {**KEYS, "wrong CORDIAL_API_KEY": WRONG_CORDIAL_KEY}.items():
        found[name] = key
        found[f"{name} (core)"] = key.rsplit("-", 1)[1]
    basic = {"Customer.io Basic header": f"{SITE_ID}:{KEYS['CUSTOMERIO_TRACK_API_KEY']}",
             "Cordial Basic header": f"{KEYS['CORDIAL_API_KEY']}:", "wrong Cordial Basic header": f"{WRONG_CORDIAL_KEY}:"}
    for name, credentials in basic.items():
        found[name] = base64.b64encode(credentials.encode()).decode().rstrip("=")
    return found


# ------------------------------------------------------------------------------------------ capturing
class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def captured_logging():
    handler, root = _ListHandler(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@contextlib.contextmanager
def captured_output():
    """stdout and stderr, at the Python level and at the file-descriptor level (subprocesses)."""
    texts = {}
    py_out, py_err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryFile() as fd_out, tempfile.TemporaryFile() as fd_err:
        saved = {1: os.dup(1), 2: os.dup(2)}
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(fd_out.fileno(), 1), os.dup2(fd_err.fileno(), 2)
        try:
            with contextlib.redirect_stdout(py_out), contextlib.redirect_stderr(py_err):
                yield texts
        finally:
            os.dup2(saved[1], 1), os.dup2(saved[2], 2)
            os.close(saved[1]), os.close(saved[2])
            for name, handle in (("fd_stdout", fd_out), ("fd_stderr", fd_err)):
                handle.seek(0)
                texts[name] = handle.read().decode(errors="replace")
            texts["python_stdout"], texts["python_stderr"] = py_out.getvalue(), py_err.getvalue()


@contextlib.contextmanager
def webhook():
    """A local endpoint for RELAY_ALERT_WEBHOOK_URL that keeps what it is sent."""
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(self.rfile.read(int(self.headers.get("content-length", 0))).decode())
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()


def table_dump(path: Path) -> str:
    """Every row of every table in every schema, whole rows cast to text (every column, any type)."""
    parts = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("select table_schema, table_name from information_schema.tables "
                             "where table_catalog = current_database() order by 1, 2").fetchall()
        for schema, table in tables:
            rows = con.execute(f'select cast(t as varchar) from "{schema}"."{table}" as t').fetchall()
            parts.append(f"== {schema}.{table} ({len(rows)} rows)\n" + "\n".join(r[0] for r in rows))
    return "\n".join(parts)


def files_text(root: Path, skip=lambda path: False) -> str:
    parts = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not skip(p)):
        parts.append(f"== {path}\n" + path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)


def step_failures(result) -> list[str]:
    return [f"{e.step_key}: {e.event_specific_data.error.message}" for e in result.all_events
            if e.event_type == dg.DagsterEventType.STEP_FAILURE]


@artifact("secrets_pipeline", "pipeline", priority=30)
def run_pipeline(directory: Path, factory=None) -> None:
    from relay import config, sample_data

    data = directory / "data"
    warehouse = data / "warehouse.duckdb"
    texts: dict[str, str] = {}
    facts: dict = {}
    with serve_emulators(keys={**KEYS, "CUSTOMERIO_SITE_ID": SITE_ID}) as servers, \
            pytest.MonkeyPatch.context() as env, webhook() as (webhook_url, alerts_posted):
        env.setenv("RELAY_DATA_DIR", str(data))
        env.setenv("RELAY_WAREHOUSE", str(warehouse))
        env.setenv("DAGSTER_HOME", str(directory / "dagster_home"))
        env.setenv("DBT_PROFILES_DIR", str(DBT_DIR))
        env.setenv("RELAY_DESTINATIONS", "emulator")
        env.setenv("RELAY_ALERT_WEBHOOK_URL", webhook_url)
        env.setenv("CUSTOMERIO_SITE_ID", SITE_ID)
        for var, key in KEYS.items():
            env.setenv(var, key)
        env.setenv("CORDIAL_API_KEY", WRONG_CORDIAL_KEY)  # the first run: refused
        for var, value in destination_env({name: server.url for name, server in servers.items()}).items():
            env.setenv(var, value)
        env.setenv("CUSTOMERIO_RATE_LIMIT", "100000")
        env.setenv("CORDIAL_RATE_LIMIT_PER_MIN", "6000000")
        env.setenv("TALON_ONE_RATE_LIMIT", "100000")
        env.setenv("TALON_ONE_MANAGEMENT_RATE_LIMIT", "1000")
        config.export_environment()
        sample_data.generate(warehouse, customers=300, seed=5)
        with duckdb.connect(str(warehouse)) as con:  # Customer.io refuses a 1000+ byte attribute: a rejection
            insert(con, "shopify.customer", [customer(800001, "long.name@example.com", LONG_NAME)])
        for name in ("customerio", "talon_one"):
            httpx.post(f"{servers[name].url}/_emulator/faults", json={"error_rate": 0.25, "seed": 3}).raise_for_status()

        from orchestration.definitions import defs
        from orchestration.preflight import PREFLIGHT_KEY
        from orchestration.sensors import run_failure_alert

        instance = dg.DagsterInstance.get()
        try:
            with captured_logging() as records, captured_output() as output:
                job = defs.resolve_job_def("daily_full")
                # The preflight refuses the wrong key before dbt runs...
                preflight = job.execute_in_process(instance=instance, raise_on_error=False,
                                                   asset_selection=[PREFLIGHT_KEY])
                facts["preflight"] = {"success": preflight.success, "failures": step_failures(preflight)}
                # ...and a key revoked once the preflight passed fails the syncs that use it, mid-run.
                first = job.execute_in_process(instance=instance, raise_on_error=False, asset_selection=[
                    key for key in job.asset_layer.selected_asset_keys if key != PREFLIGHT_KEY])
                failure = next(e for e in first.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
                context = dg.build_run_status_sensor_context(
                    sensor_name="run_failure_alert", dagster_event=failure, dagster_instance=instance,
                    dagster_run=first.dagster_run).for_run_failure()
                run_failure_alert(context)
                facts["first"] = {"success": first.success, "failures": step_failures(first)}
                for name in ("customerio", "talon_one"):
                    facts[f"{name}_stats_after_faults"] = httpx.get(f"{servers[name].url}/_emulator/stats").json()
                    httpx.post(f"{servers[name].url}/_emulator/faults", json={"error_rate": 0}).raise_for_status()
                # The operator fixes the key and re-runs what failed (*): Cordial's syncs, then the stakeholder copy.
                env.setenv("CORDIAL_API_KEY", KEYS["CORDIAL_API_KEY"])
                failed = [key for key in job.asset_layer.selected_asset_keys
                          if key.path[:2] == ["destinations", "cordial"] or key.path[0] == "stakeholders"]
                second = job.execute_in_process(instance=instance, raise_on_error=False, asset_selection=failed)
                facts["second"] = {"success": second.success, "failures": step_failures(second)}
            run_ids = facts["run_ids"] = [preflight.run_id, first.run_id, second.run_id]
            texts["python logging (DEBUG)"] = "\n".join(
                f"{r.levelname} {r.name} {r.getMessage()} {r.exc_text or ''}" for r in records)
            texts["captured stdout and stderr (Python and file descriptors)"] = "\n".join(
                f"== {name}\n{text}" for name, text in sorted(output.items()))
            texts["Dagster event log records"] = "\n".join(
                dg.serialize_value(entry) for run_id in run_ids for entry in instance.all_logs(run_id))
            info = [f"{r.levelname} {r.name} {r.getMessage()}" for r in records if r.levelno >= logging.INFO]
            info += [entry.user_message for run_id in run_ids for entry in instance.all_logs(run_id)
                     if entry.level >= logging.INFO]
            (directory / "info_logs.txt").write_text("\n".join(info))
        finally:
            instance.dispose()
        for name, server in servers.items():
            for what in ("state", "stats"):
                texts[f"emulator {name} /_emulator/{what}"] = httpx.get(f"{server.url}/_emulator/{what}").text
        texts["alert webhook requests"] = "\n".join(alerts_posted)
        facts["alerts_posted"] = len(alerts_posted)

    # Each dbt command of a job has its target (and log) directory under the data directory's dbt/, named after
    # the run: relay_dbt_models-<run id[:7]>-... (orchestration/dbt_runs.py)
    new_targets = sorted(p for p in (data / "dbt").glob("relay_dbt_*")
                         if p.name.split("-")[1] in {run_id[:7] for run_id in facts["run_ids"]})
    facts["dbt_target_dirs"] = [str(p) for p in new_targets]
    texts["dbt logs and artifacts of the runs"] = "\n".join(files_text(p) for p in new_targets)
    texts["warehouse, every table"] = table_dump(warehouse)
    from relay import publish
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RELAY_DATA_DIR", str(data))
        published = publish.published_path()
    facts["published"] = str(published)
    texts["published copy, every table"] = table_dump(published)
    texts["files under DAGSTER_HOME (sqlite event log, run storage, compute logs)"] = files_text(directory / "dagster_home")
    texts["files under the data directory (alerts, rate budgets, dbt's saved parse)"] = files_text(data, skip=lambda p: ".duckdb" in p.name)
    facts["alert_file"] = (data / "alerts" / "run_failures.jsonl").read_text()
    (directory / "texts.json").write_text(json.dumps(texts))
    (directory / "facts.json").write_text(json.dumps(facts, default=str))


@pytest.fixture(scope="module")
def pipeline(request):
    directory = shared(request, "secrets_pipeline")
    return {"dir": directory, "texts": json.loads((directory / "texts.json").read_text()),
            "facts": json.loads((directory / "facts.json").read_text())}


SOURCES = [
    "python logging (DEBUG)", "captured stdout and stderr (Python and file descriptors)", "dbt logs and artifacts of the runs", "warehouse, every table", "published copy, every table",
    "Dagster event log records", "files under DAGSTER_HOME (sqlite event log, run storage, compute logs)",
    "files under the data directory (alerts, rate budgets, dbt's saved parse)", "alert webhook requests",
    *(f"emulator {n} /_emulator/{w}" for n in ("customerio", "cordial", "talon_one") for w in ("state", "stats")),
]


# --------------------------------------------------------------------------------------------- tests
def test_the_runs_met_the_failures_they_were_meant_to(pipeline):
    facts = pipeline["facts"]
    # The preflight named the refused key's variable, never the key, before dbt ran.
    assert facts["preflight"]["success"] is False
    assert "CORDIAL_API_KEY refused: HTTP 401" in " ".join(facts["preflight"]["failures"])
    assert facts["first"]["success"] is False and facts["second"]["success"] is True
    # The wrong Cordial key failed Cordial's syncs with a message that names the variable, not the key.
    failures = " ".join(facts["first"]["failures"])
    assert "HTTP 401" in failures and "CORDIAL_API_KEY" in failures
    assert facts["dbt_target_dirs"], "the dbt invocation of the first run left no target/log directory to scan"
    # Injected 5xx were met and retried.
    for name in ("customerio", "talon_one"):
        statuses = facts[f"{name}_stats_after_faults"]["by_status"]
        assert sum(statuses.get(s, 0) for s in ("500", "502", "503", "504")) > 0, statuses
    # The failure reached the alert file and the webhook; the 10 KB name was rejected with its reason.
    assert json.loads(facts["alert_file"].splitlines()[0])["job"] == "daily_full" and facts["alerts_posted"] == 1
    assert "1000 bytes" in pipeline["texts"]["warehouse, every table"]


@pytest.mark.parametrize("source", SOURCES)
def test_no_key_in(pipeline, source):
    text = pipeline["texts"][source]
    assert text.strip(), f"nothing was captured from {source}: the scan would prove nothing"
    leaked = [name for name, needle in needles().items() if needle in text]
    assert not leaked, f"{source} holds {leaked}"


def test_no_customer_email_or_phone_in_logs_at_info(pipeline):
    with duckdb.connect(str(Path(pipeline["dir"]) / "data" / "warehouse.duckdb"), read_only=True) as con:
        emails = [e for (e,) in con.execute("select distinct email from staging.stg_shopify__customers where email is not null").fetchall()]
        phones = [p for (p,) in con.execute("select distinct phone from staging.stg_shopify__customers where phone is not null").fetchall()]
    assert len(emails) > 200 and len(phones) > 100
    texts = pipeline["texts"]
    logs = {
        "Python logging and Dagster's event log at INFO and above": (Path(pipeline["dir"]) / "info_logs.txt").read_text(),
        "stdout/stderr of the runs, dbt's output included": texts["captured stdout and stderr (Python and file descriptors)"],
    }
    assert "dbt" in logs["Python logging and Dagster's event log at INFO and above"]
    for where, text in logs.items():
        leaked = [value for value in emails + phones if value in text]
        assert not leaked, f"{where} holds customer contact details, e.g. {leaked[:3]}"


def test_the_published_copy_is_read_only(pipeline):
    from relay import publish

    path = Path(pipeline["facts"]["published"])
    assert not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RELAY_PUBLISHED", str(path))
        with publish.connect_published() as con:
            assert con.execute("select count(*) from relay.sync_runs").fetchone()[0] > 0
            with pytest.raises(duckdb.Error, match="read-only"):
                con.execute("create table relay.tampered as select 1 as x")
            with pytest.raises(duckdb.Error, match="read-only"):
                con.execute("delete from relay.sync_state")
    # That the mode stops a writer who does not ask for read-only: test_no_one_but_root_can_open_the_published_copy_for_writing


def test_no_one_but_root_can_open_the_published_copy_for_writing(monkeypatch):
    """Root ignores file modes (and CI runs as root), so the attempt runs as an ordinary user: the current one,
    or, under root, `nobody` made the owner of the copy (the mode alone must stop it, as it would stop whoever
    published). A DuckDB connection that is not read-only starts by opening the file read-write; so does `exec 3<>`."""
    from relay import publish

    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)  # pytest's tmp_path is closed to other users: the attempt must reach the file
        warehouse, published = Path(directory) / "warehouse.duckdb", Path(directory) / "published.duckdb"
        monkeypatch.setenv("RELAY_WAREHOUSE", str(warehouse))
        monkeypatch.setenv("RELAY_PUBLISHED", str(published))
        with duckdb.connect(str(warehouse)) as con:
            con.execute("create table t as select 1 as x")
        publish.publish()
        assert not published.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        user = {}
        if os.geteuid() == 0:
            os.chown(published, 65534, 65534)
            user = {"user": 65534, "group": 65534, "extra_groups": []}

        def open_as_user(redirect: str) -> subprocess.CompletedProcess:
            return subprocess.run(["sh", "-c", f'exec 3{redirect} "$0"', str(published)], capture_output=True,
                                  text=True, timeout=30, **user)

        assert open_as_user("<").returncode == 0, "the user cannot even read the copy: the check below proves nothing"
        refused = open_as_user("<>")
        assert refused.returncode != 0 and "Permission denied" in refused.stderr, "the copy can be opened for writing"


def test_a_contact_write_that_keeps_failing_logs_no_email(tmp_path, monkeypatch, caplog):
    from sinks import destinations
    from sinks.declarations import SyncSpec
    from sinks.engine import SyncRun
    from sinks.http import HttpClient

    email = "leaving.customer@example.com"
    warehouse = tmp_path / "warehouse.duckdb"
    spec = SyncSpec(name="sync_test__contacts", relation="syncs.contacts", destination="cordial", object="attributes",
                    primary_key=("customer_key",), identifier="email", on_exit="clear", schedule="frequent",
                    columns={"customer_key": "varchar", "email": "varchar", "vip_tier": "varchar"})
    server = start(CordialConfig(api_key=KEYS["CORDIAL_API_KEY"], port=0, rate_limits={"api": RateLimit(0, 60, per_route=True)}))
    try:
        monkeypatch.setenv("CORDIAL_API_URL", server.url)
        monkeypatch.setenv("CORDIAL_API_KEY", KEYS["CORDIAL_API_KEY"])
        monkeypatch.setenv("CORDIAL_RATE_LIMIT_PER_MIN", "6000000")
        monkeypatch.setattr(HttpClient, "_delay", lambda self, attempt, retry_after: 0.0)  # retries without waiting
        with duckdb.connect(str(warehouse)) as con:
            con.execute("create schema syncs")
            con.execute("create table syncs.contacts as select 'k1' as customer_key, ? as email, 'gold' as vip_tier", [email])
        if SyncRun(spec, destinations.build("cordial"), warehouse).execute().status != "succeeded":
            pytest.fail("the first sync should deliver the contact")
        with duckdb.connect(str(warehouse)) as con:
            con.execute("delete from syncs.contacts")  # the person exits: the contact's attributes are cleared (PUT)
        httpx.post(f"{server.url}/_emulator/faults", json={"error_rate": 1.0}).raise_for_status()
        caplog.set_level(logging.INFO)
        result = SyncRun(spec, destinations.build("cordial"), warehouse).execute()
    finally:
        server.stop()
    if result.status != "failed" or "failed 8 times" not in result.message:
        pytest.fail(f"the clear should have kept failing: {result.status} {result.message}")
    assert email not in caplog.text
    assert email not in result.message  # what Dagster's step failure, the event log and the alert carry


# ------------------------------------------------------------------------------- redaction before truncation
STRADDLING_KEY = "straddle-KEY-5f0c2a9e7b31d8"


def _excerpt_sites(key: str):
    """(site, where its excerpt is cut, body, how the text reaches an error, rejection reason or log line) for
    every excerpt of an answer the adapters and the HTTP layer make."""
    from types import SimpleNamespace

    from sinks.destinations.base import Batch, Change
    from sinks.destinations.cordial import Cordial, _check as cordial_check
    from sinks.destinations.customerio import CustomerIO, _raise_for
    from sinks.destinations.talon_one import TalonOne, _check as talon_check
    from sinks.http import Request
    from sinks.http.retries import _unexpected

    def raised(check):
        def run(response):
            with pytest.raises(Exception) as info:
                check(response, "doing something")
            return str(info.value)
        return run

    def one() -> Batch:
        return Batch(Request("POST", "/x", json={}), [Change(key="k", kind="add", identifier="a@example.com",
                                                             row={"tier": "gold"}, fields=["tier"])])

    def cordial_import(response) -> str:  # a refused import start reaches the warning naming the job's outcome
        sent = iter([response, httpx.Response(200, json={})])

        class Client:
            async def send(self, request):
                return next(sent)

        async def load():
            return one().items

        with tempfile.TemporaryDirectory() as directory, captured_logging() as records:
            cordial = Cordial(base_url="http://cordial", api_key=key, import_dir=directory, import_url="http://files")
            asyncio.run(cordial._import(SimpleNamespace(object="attributes"), Client(), lambda: "email\r\n", load))
        return "\n".join(r.getMessage() for r in records)

    cio = CustomerIO(track_url="http://cio", app_url="http://cio", site_id="site", track_api_key=key, app_api_key=None)
    cordial = Cordial(base_url="http://cordial", api_key=key)
    talon = TalonOne(base_url="http://talon", integration_key=key, management_key=None)
    return [
        ("Customer.io rejection", 300, None, lambda r: cio.interpret(None, one(), r)[0][1]),
        ("Customer.io setup", 300, None, raised(_raise_for)),
        ("Cordial rejection", 300, None, lambda r: cordial.interpret(None, one(), r)[0][1]),
        ("Cordial rejection, errors not a list", 200, lambda text: json.dumps({"errors": text}),
         lambda r: cordial.interpret(None, one(), r)[0][1]),
        ("Cordial setup", 300, None, raised(cordial_check)),
        ("Cordial import start", 200, None, cordial_import),
        ("Talon.One rejection", 300, None, lambda r: talon.interpret(None, one(), r)[0][1]),
        ("Talon.One setup", 300, None, raised(talon_check)),
        ("an answer that is not the API's", 160, None, lambda r: _unexpected("POST", httpx.Response(200, text=r.text))),
        ("a redirect's location", 200, None, lambda r: _unexpected("POST", httpx.Response(
            302, headers={"location": r.text}))),
    ]


def _fragments(key: str, length: int = 6) -> set[str]:
    # 6 characters of a key count as recognisable: enough to match a leaked excerpt to a key (or narrow a guess),
    # while shorter runs turn up by chance in ordinary text.
    return {key[i:i + length] for i in range(len(key) - length + 1)}


@pytest.mark.parametrize("site", [s[0] for s in _excerpt_sites(STRADDLING_KEY)])
def test_no_part_of_a_key_cut_by_an_excerpt_survives(site):
    """An answer that echoes the key right where an excerpt is cut: the excerpt is redacted before it is cut,
    so neither the key nor a recognisable part of it reaches the error, rejection reason or log line."""
    _, cut, wrap, message = next(s for s in _excerpt_sites(STRADDLING_KEY) if s[0] == site)
    text = "x" * (cut - 10) + STRADDLING_KEY + " and more"  # 10 of its characters before the cut
    out = message(httpx.Response(400, text=wrap(text) if wrap else text))
    assert "x" * 20 in out and "***" in out, f"the excerpt is not in {out!r}: the check proves nothing"
    leaked = [f for f in _fragments(STRADDLING_KEY) if f in out]
    assert not leaked, f"{site} leaks {leaked} of the key: {out!r}"


def test_a_key_spelled_with_html_entities_is_redacted_in_an_excerpt():
    from sinks.http import REDACT, excerpt

    REDACT.add(STRADDLING_KEY)
    page = f"<html><body><p>key: {STRADDLING_KEY.replace('-', '&#45;')}</p></body></html>"
    out = excerpt(httpx.Response(200, text=page, headers={"content-type": "text/html"}))
    assert "key: ***" in out and not [f for f in _fragments(STRADDLING_KEY) if f in out], out
