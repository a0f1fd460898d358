"""Fail fast, all at once: `relay doctor` names every missing or malformed setting, each credential a
destination refuses, a conflicting attribute definition and a warehouse another process holds, in one run
and within seconds; the same checks are the first step of every job, so a wrong key fails a run before
dbt. Real commands, real emulators over HTTP (`live` mode pointed at them, as production points at the
vendors), real Dagster runs."""

import json
import os
import subprocess
import sys
import time

import duckdb
import httpx
import pytest

from relay import sample_data
from support.emulators import destination_env, serve_emulators
from support.project import ROOT

RELAY = str(os.path.join(os.path.dirname(sys.executable), "relay"))
DEMO_KEYS = {"CUSTOMERIO_SITE_ID": "demo-site", "CUSTOMERIO_TRACK_API_KEY": "demo-track-key",
             "CUSTOMERIO_APP_API_KEY": "demo-app-key", "CORDIAL_API_KEY": "demo-cordial-key",
             "TALON_ONE_INTEGRATION_KEY": "demo-talon-integration-key",
             "TALON_ONE_MANAGEMENT_KEY": "demo-talon-management-key"}


@pytest.fixture
def servers():
    with serve_emulators() as servers:
        yield servers


@pytest.fixture
def live(servers, warehouse):
    """The environment of a live deployment pointed at the emulators, every key right; a small shop landed."""
    sample_data.generate(warehouse, customers=50, seed=1)
    return {**os.environ, "RELAY_DESTINATIONS": "live", **DEMO_KEYS,
            **destination_env({name: server.url for name, server in servers.items()})}


def run(command: list[str], env: dict, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return done, time.monotonic() - started


def failures(env: dict) -> tuple[list[dict], float, subprocess.CompletedProcess]:
    done, took = run([RELAY, "doctor", "--json"], env)
    return [f for f in json.loads(done.stdout) if f["status"] == "fail"], took, done


def test_two_missing_variables_and_a_wrong_key_are_named_in_one_run_within_5_s(live):
    env = {k: v for k, v in live.items() if k not in ("CUSTOMERIO_SITE_ID", "CORDIAL_API_KEY")}
    env["TALON_ONE_INTEGRATION_KEY"] = "not-the-key"
    done, took = run([RELAY, "doctor"], env)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    failed = [line for line in done.stdout.splitlines() if line.lstrip().startswith("FAIL")]
    assert len(failed) == 3, done.stdout
    assert "CUSTOMERIO_SITE_ID is not set" in failed[1] and "CORDIAL_API_KEY is not set" in failed[0]
    assert "TALON_ONE_INTEGRATION_KEY refused: HTTP 401" in failed[2]
    assert "not-the-key" not in done.stdout + done.stderr
    assert "3 problems found" in done.stdout and took < 5, f"took {took:.1f}s"


def test_every_check_passes_on_a_right_configuration(live):
    done, took = run([RELAY, "doctor"], live)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ready to run" in done.stdout and "FAIL" not in done.stdout
    # Each credential proven by a request of its own, the attribute definitions the syncs need compared.
    for variable in ("CUSTOMERIO_TRACK_API_KEY", "CUSTOMERIO_APP_API_KEY", "CORDIAL_API_KEY",
                     "TALON_ONE_INTEGRATION_KEY", "TALON_ONE_MANAGEMENT_KEY"):
        assert f"{variable} accepted" in done.stdout, variable
    assert "attributes defined" in done.stdout


def test_malformed_settings_and_a_wrong_region_are_all_listed(live):
    env = {**live, "RELAY_MAX_CHANGE_SHARE": "30%", "RELAY_CONCURRENCY": "0", "CUSTOMERIO_REGION": "eu",
           "TALON_ONE_BASE_URL": "yourbrand.talon.one", "RELAY_ALERT_WEBHOOK_URL": "hooks.example.com"}
    failed, took, done = failures(env)
    texts = "\n".join(f"{f['subject']}: {f['text']}" for f in failed)
    for expected in ("settings: RELAY_MAX_CHANGE_SHARE is '30%'; expected a share above 0 and at most 1",
                     "settings: RELAY_CONCURRENCY is '0'; expected a whole number, 1 or more",
                     "settings: RELAY_ALERT_WEBHOOK_URL is 'hooks.example.com'; expected a URL",
                     "talon_one: TALON_ONE_BASE_URL is 'yourbrand.talon.one'; expected a URL starting with https://"):
        assert expected in texts, texts
    # RELAY_CONCURRENCY is every destination's: listed once, under settings.
    assert texts.count("RELAY_CONCURRENCY") == 1, texts


def test_a_region_mismatch_is_named_with_the_fix(live):
    failed, _, _ = failures({**live, "CUSTOMERIO_REGION": "eu"})
    assert [f["text"] for f in failed] == [
        "the workspace is in region 'us' but CUSTOMERIO_REGION is 'eu': set CUSTOMERIO_REGION=us"]


def test_an_attribute_defined_with_another_type_fails_naming_both(live, servers):
    from sinks import destinations
    from relay import pipeline

    spec = next(s for s in pipeline.sync_specs() if s.destination == "cordial" and s.object == "attributes")
    column, kind = next(iter(destinations.build("cordial").attribute_types(spec).items()))
    other = "number" if kind != "number" else "string"
    httpx.post(f"{servers['cordial'].url}/v2/accountcontactattributes", auth=(DEMO_KEYS["CORDIAL_API_KEY"], ""),
               json={"key": column, "name": column, "type": other}).raise_for_status()
    failed, _, _ = failures(live)
    assert [f["text"] for f in failed] == [f"attribute {column} is defined as {other!r}, but {spec.name} sends {kind!r}: "
                                           "change it there, or the column's type meta"]


def test_a_warehouse_held_by_another_writer_is_named(live, warehouse):
    with duckdb.connect(str(warehouse)):  # another process (this test) writes the warehouse
        failed, _, _ = failures(live)
    assert [f["subject"] for f in failed] == ["warehouse"] and "held by another process" in failed[0]["text"]


def test_a_wrong_key_fails_a_job_at_its_first_step_before_dbt(live, tmp_path):
    env = {**live, "CORDIAL_API_KEY": "not-the-key", "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    done, took = run([sys.executable, "-m", "orchestration", "run", "frequent_path"], env, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "step failed: bookkeeping__preflight: 1 problems" in done.stdout
    assert "cordial: CORDIAL_API_KEY refused: HTTP 401" in done.stdout and "not-the-key" not in done.stdout
    assert "relay_dbt_models" not in done.stdout.replace("step skipped: relay_dbt_models", "")
    # dbt never ran: no model was built, and the run's alert says why.
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from information_schema.schemata where schema_name = 'staging'").fetchone()[0] == 0
    [alert] = [json.loads(line) for line in (tmp_path / "data" / "alerts" / "run_failures.jsonl").read_text().splitlines()]
    assert alert["steps"] == ["bookkeeping__preflight"] and "CORDIAL_API_KEY refused" in alert["error"]
