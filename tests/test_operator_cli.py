"""The command line an operator and a script can trust: a sync (and a `relay run`) with refused rows exits
non-zero (unless --allow-rejections) and names the command that lists them; `relay rejections` shows the reasons with sample
record keys; `relay sync` publishes the stakeholder copy, so a query right after sees its rows; `relay query`
reports bad SQL in one line; `relay status --limit 0` lists nothing and still judges health; `relay
--version` answers; the default demo prints under 100 lines and every check in it passes (make test-e2e).
Real warehouse, real emulator over HTTP; the sync under test is a harness spec instead of a shipped model."""

import json
import os
import subprocess
import sys

import pytest

from relay import cli, console, pipeline
from support.harnesses import CustomerIOHarness, people_rows
from support.ports import free_ports
from support.project import ROOT

RELAY = os.path.join(os.path.dirname(sys.executable), "relay")

POISONED = 3  # rows the destination refuses


@pytest.fixture
def refused_run(monkeypatch, warehouse):
    """A Customer.io people sync whose model has POISONED rows the destination refuses: (harness, spec, warehouse)."""
    monkeypatch.setenv("RELAY_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("RELAY_PUBLISHED", str(warehouse.parent / "published.duckdb"))
    with CustomerIOHarness(monkeypatch) as h:
        rows = [{**r, **h.poison} if i < POISONED else r for i, r in enumerate(people_rows(20))]
        h.write_people(warehouse, rows)
        monkeypatch.setattr(pipeline, "sync_specs", lambda names=None, schedule=None: [h.people])
        yield h, h.people, warehouse


def test_a_sync_with_refused_rows_exits_non_zero_and_names_the_listing(refused_run, capsys):
    h, spec, warehouse = refused_run
    assert cli.main(["sync"]) == 1
    err = capsys.readouterr().err
    assert f"{spec.name}: {POISONED} rows refused by customerio; see `relay rejections {spec.name}`" in err
    assert cli.main(["sync", "--allow-rejections"]) == 0  # the refused rows are retried, and refused again


def test_relay_rejections_lists_open_refusals_by_reason_with_sample_keys(refused_run, capsys):
    h, spec, warehouse = refused_run
    cli.main(["sync", "--allow-rejections"])
    capsys.readouterr()
    assert cli.main(["rejections"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == [str(POISONED), spec.name] and h.poison_reason in out[0], out
    assert out[1].strip() == "e.g. c000000, c000001, c000002"
    cli.main(["rejections", "--json"])
    listed = json.loads(capsys.readouterr().out)
    assert sorted(r["record_key"] for r in listed) == ["c000000", "c000001", "c000002"]
    # Fixed in the model and delivered: no longer open.
    h.write_people(warehouse, people_rows(20))
    assert cli.main(["sync"]) == 0
    capsys.readouterr()
    cli.main(["rejections"])
    assert capsys.readouterr().out.strip() == "no open rejections"


def test_a_query_right_after_a_sync_sees_its_rows(refused_run, capsys):
    cli.main(["sync", "--allow-rejections"])  # publishes the stakeholder copy when it finishes
    capsys.readouterr()
    assert cli.main(["query", "select count(*) as n from relay.sync_rejections", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": POISONED}]


def test_relay_run_exits_non_zero_when_its_syncs_left_refused_rows(refused_run, capsys, monkeypatch):
    h, spec, warehouse = refused_run
    # The job's process, here: its one sync delivers, the destination refuses POISONED rows, the run succeeds.
    monkeypatch.setattr(cli, "_run_job", lambda job, verbose=False: 0 if pipeline.run_sync(spec) else 1)
    assert cli.main(["run", "frequent_path"]) == 1
    captured = capsys.readouterr()
    assert f"{spec.name}: {POISONED} rows refused; see `relay rejections {spec.name}`" in captured.err
    assert f"   {spec.name}" in captured.out and f"rejected={POISONED}" in captured.out  # the per-sync table
    assert cli.main(["run", "frequent_path", "--allow-rejections"]) == 0


def test_a_missing_copy_names_the_commands_that_make_it(refused_run, capsys):
    assert cli.main(["query", "select 1"]) == 1
    assert "`relay build`, `relay sync`, `relay run`" in capsys.readouterr().err


def test_bad_sql_is_one_line_and_status_limit_zero_lists_nothing(refused_run, capsys):
    cli.main(["sync", "--allow-rejections"])
    capsys.readouterr()
    assert cli.main(["query", "select nonsense from nowhere"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("relay query: CatalogException: ") and "nowhere" in err, err
    assert cli.main(["status", "--limit", "0"]) == 0
    assert capsys.readouterr().out == ""
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("relay ")


class Stream:
    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_progress_redraws_at_most_ten_times_a_second_and_logs_a_line_every_ten_seconds(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    terminal, log = Stream(tty=True), Stream(tty=False)
    bar, line = console.progress("sync_x", terminal), console.progress("sync_x", log)
    for done in range(1, 6001):  # 6,000 rows over 3 seconds
        clock[0] += 0.0005
        bar(done, 6000)
        line(done, 6000)
    assert 25 <= terminal.text.count("\r") <= 31, terminal.text.count("\r")  # ~10 a second, and the last
    assert terminal.text.endswith("6,000/6,000 2,000 rows/s done\n")
    assert "rows/s" in terminal.text and "s left" in terminal.text
    assert log.text == ""  # under 10 seconds: nothing yet, the run's summary line follows
    clock[0] += 11
    line(6000, 7000)
    assert log.text.count("\n") == 1 and log.text.startswith("  sync_x: 6,000/7,000 ")


@pytest.mark.e2e  # the whole demo at its default size (make test-e2e)
def test_the_demo_is_short_and_every_check_is_green(tmp_path):
    env = {**os.environ, "RELAY_DATA_DIR": str(tmp_path / "data"), "RELAY_WAREHOUSE": str(tmp_path / "data" / "warehouse.duckdb"),
           "DAGSTER_HOME": str(tmp_path / "dagster_home"), "RELAY_EMULATOR_BASE_PORT": str(free_ports()[0])}
    env.pop("RELAY_DEMO_CUSTOMERS", None)
    done = subprocess.run([RELAY, "demo"], cwd=ROOT, env=env, text=True, capture_output=True, timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    assert "5000 customers" in output and len(output.splitlines()) < 100, len(output.splitlines())
    # A quiet run still lists every check that did not pass, warnings included: there are none.
    assert "check failed" not in output and "did not pass" not in output, output
    assert " succeeded changes=" in output and "partial" not in output
