"""Every gate the README names runs on the frequent path and blocks its syncs.

Per scenario a violation is seeded (bad raw data, or a model whose SQL is broken the way the gate exists to
catch, in a copy of the dbt project), then `relay run frequent_path` runs after an appended hour (a scoped
build) against live emulators. Each gate must fail in dbt's run_results.json (status `fail`, not a warning)
and be named in the run's output, and no sync step may record a run or send anything. A failing gate skips
the models below it, so gates that depend on each other need scenarios of their own. The scenarios run in
one process of their own (RELAY_DBT_PROJECT_DIR is read at import), each on a fresh copy of the warehouse.
"""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from support.dbt import run_dbt
from support.emulators import serve_emulators, served_env
from support.project import DBT, DBT_DIR
from relay import config, sample_data

pytestmark = pytest.mark.slow

FINAL = "select * from final"
RELAY = str(Path(sys.executable).with_name("relay"))


def _patch(model: str, replacement: str):
    def seed(project: Path, warehouse: Path) -> None:
        path = next(project.joinpath("models").rglob(f"{model}.sql"))
        text = path.read_text()
        assert text.rstrip().endswith(FINAL), f"{model} no longer ends with {FINAL!r}: update this test"
        path.write_text(text.rstrip()[: -len(FINAL)] + replacement + "\n")
    return seed


def _bad_raw_data(project: Path, warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update shopify.order_line set price = -5 where id = (select max(id) from shopify.order_line)")
        # A loader that lands timestamps as text, one of them unreadable.
        con.execute("alter table shopify.refund alter processed_at type varchar")
        con.execute("update shopify.refund set processed_at = '31/12/2026' where id = (select max(id) from shopify.refund)")


def _all(*seeds):
    def seed(project: Path, warehouse: Path) -> None:
        for one in seeds:
            one(project, warehouse)
    return seed


_RETIRED_KEY_LIVE = _patch(
    "identity_merges", "select * from final\nunion all\n(select customer_key, customer_key, key_changed_at, "
                       "identifier from resolved where customer_key is not null limit 1)")
_SUPPRESSED_IN_AUDIENCE = _patch(
    "sync_talon_one__audience_members",
    "select * from final\nunion all\nselect segments.customer_key, customers.talon_one_integration_id, "
    "'wh_winback_eligible'\nfrom {{ ref('customer_segments') }} as segments\n"
    "inner join customers on segments.customer_key = customers.customer_key\nwhere segments.is_suppressed")

# scenario -> (how the violations are seeded, the gate tests they must trip). A failing test skips every model
# downstream of all its parents (and so the tests on those), so violations share a scenario only where none
# hides another: the raw-data gates and the retired-key gate (identity_merges feeds no model) hide nothing.
SCENARIOS = {
    "bad raw data, a retired key still live, a suppressed person in a promotional audience": (
        _all(_bad_raw_data, _RETIRED_KEY_LIVE, _SUPPRESSED_IN_AUDIENCE),
        ["assert_raw_amounts_are_plausible", "assert_raw_timestamps_parse", "assert_retired_keys_are_not_live",
         "assert_no_suppressed_customer_in_promotional_audiences"]),
    "identity not converged": (
        _patch("int_identifiers_clustered", "select * replace (identifier as component_id) from final"),
        ["assert_identity_converged"]),
    "winback eligibility not live": (
        _patch("winback_eligibility", "select * replace (true as winback_eligible) from final"),
        ["assert_winback_eligibility_is_live"]),
    "suppressed people promo-eligible": (
        _patch("customer_segments", "select * replace (winback_eligible or is_suppressed as winback_eligible) from final"),
        ["assert_no_recent_purchaser_in_winback_or_cart", "assert_no_excluded_customer_is_promo_eligible"]),
}


def gate_tests() -> set[str]:
    manifest = json.loads((DBT_DIR / "target" / "manifest.json").read_text())
    return {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "test" and "gate" in n["tags"]}


GATES = sorted(gate for _, gates in SCENARIOS.values() for gate in gates)


def test_every_gate_has_a_scenario():
    assert gate_tests() == set(GATES)


def test_each_gate_violation_blocks_every_sync_on_the_frequent_path(tmp_path):
    """One test, not one per gate: the scenarios run once, in a process of their own (a parametrized test's
    cases may land on both xdist workers, each paying for every scenario)."""
    env = {**os.environ, "RELAY_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    done = subprocess.run([sys.executable, __file__, str(tmp_path)], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = json.loads((tmp_path / "results.json").read_text())
    problems = {}
    for gate in GATES:
        [scenario] = [name for name, (_, gates) in SCENARIOS.items() if gate in gates]
        run = runs[scenario]
        if run["exit"] != 1 or run["status"].get(gate) != "fail" or f"check failed (error): {gate} on " not in run["output"]:
            problems[gate] = f"exit {run['exit']}, dbt status {run['status'].get(gate)}, output: {run['output'][-1500:]}"
        elif run["requests"] or run["sync_runs"]:
            problems[gate] = f"a sync ran: {run['requests']} requests, sync_runs table: {bool(run['sync_runs'])}"
    assert not problems, problems
    # No sensor sees a run `relay run` starts: each failed run wrote its own alert.
    alerts = [json.loads(line) for line in (tmp_path / "data" / "alerts" / "run_failures.jsonl").read_text().splitlines()]
    assert len(alerts) == len(SCENARIOS) and all(a["outcome"] == "failed" and a["job"] == "frequent_path"
                                                 and a["launched_by"] == "python -m orchestration run" for a in alerts)


def _drive(work: Path) -> None:
    """The scenarios, in this process: emulators in threads, then `relay run frequent_path` per scenario."""
    from relay import cli

    base = work / "base.duckdb"
    sample_data.generate(base, customers=300, seed=11)
    run_dbt(base, "build", "--full-refresh", "--exclude", "resource_type:unit_test")  # complete: the next is scoped
    sample_data.append(base, hours=1)
    project = Path(os.environ["RELAY_DBT_PROJECT_DIR"])
    shutil.copytree(DBT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    pristine = work / "pristine"
    shutil.copytree(project, pristine)
    # Every scenario's warehouse has this one path: dbt then re-parses only the model a scenario patched
    # (a changed profile, e.g. another warehouse path, makes it parse everything again).
    warehouse = work / "scenario" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    os.environ["RELAY_WAREHOUSE"] = str(warehouse)
    subprocess.run([DBT, "parse", "--quiet"], cwd=project, check=True)

    results = {}
    with serve_emulators() as servers:
        os.environ.update(served_env(servers))
        for name, (seed, _) in SCENARIOS.items():
            shutil.rmtree(project / "models")
            shutil.copytree(pristine / "models", project / "models")
            shutil.copy(base, warehouse)
            seed(project, warehouse)
            before = sum(s.emulator.stats.writes() for s in servers.values())
            output = io.StringIO()
            with contextlib.redirect_stdout(output):
                code = cli.main(["run", "frequent_path"])
            newest = max(config.dbt_target_dir().glob("relay_dbt_models-*/run_results.json"),
                         key=lambda p: p.stat().st_mtime)
            with duckdb.connect(str(warehouse), read_only=True) as con:  # a sync step records its run first
                sync_runs = con.execute("select count(*) from information_schema.tables "
                                        "where table_schema = 'relay' and table_name = 'sync_runs'").fetchone()[0]
            results[name] = {
                "exit": code, "output": output.getvalue(), "sync_runs": sync_runs,
                "requests": sum(s.emulator.stats.writes() for s in servers.values()) - before,
                "status": {r["unique_id"].split(".")[2]: r["status"]
                           for r in json.loads(newest.read_text())["results"]},
            }
    (work / "results.json").write_text(json.dumps(results))


if __name__ == "__main__":
    work_dir = Path(sys.argv[1])
    os.environ["RELAY_DBT_PROJECT_DIR"] = str(work_dir / "dbt_project")
    os.environ["DBT_PROFILES_DIR"] = str(work_dir / "dbt_project")
    os.environ["RELAY_DESTINATIONS"] = "emulator"
    _drive(work_dir)
