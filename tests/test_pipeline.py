"""The whole pipeline through the Dagster job operators run: sample data -> dbt build -> syncs to the
three emulators over HTTP -> stakeholder copy. Then: an unchanged rerun sends nothing, an hour and then a
day of new activity flow through the frequent path, and a broken upstream model blocks every sync. Every
request the syncs send is judged by the vendors' schemas (tests/vendor_schemas.py, via the fixture)."""

import json
import os
import stat
from dataclasses import replace

import dagster as dg
import duckdb
import pytest

from relay import config, publish, sample_data
from sinks import destinations
from sinks.engine import SyncRun

pytestmark = pytest.mark.slow


def requests(emulators) -> dict[str, int]:
    """Requests that could change each destination (every job's preflight reads: those do not count)."""
    return {name: server.emulator.stats.writes() for name, server in emulators.items()}


def run(defs, job: str, instance):
    return defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False)


def synced_rows(warehouse) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return dict(con.execute("select sync_name, count(*) from relay.sync_state group by 1").fetchall())


def test_pipeline_end_to_end(emulators, warehouse):
    config.export_environment()
    sample_data.generate(warehouse, customers=1000, seed=7)
    from orchestration.definitions import defs
    from orchestration.syncs import SYNC_SPECS

    with dg.instance_for_test() as instance:
        first = run(defs, "daily_full", instance)
        assert first.success
        # Freshly generated data is fresh (its clock: tests/test_freshness.py): every raw table's freshness check
        # passes, and no check errs. (A shop this small may trip a data-health warning by chance: the default
        # demo's every check passing is test_operator_cli's.)
        checks = [e.event_specific_data for e in first.all_events
                  if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
        assert [f"{c.asset_key.to_user_string()}: {c.check_name}" for c in checks
                if not c.passed and (c.check_name == "freshness" or c.severity == dg.AssetCheckSeverity.ERROR)] == []
        raw_tables = json.loads((config.DBT_PROJECT_DIR / "target" / "manifest.json").read_text())["sources"]
        freshness = [c for c in checks if c.check_name == "freshness"]
        assert len(freshness) == len(raw_tables) and all("lag_hours" in c.metadata for c in freshness)
        # After the syncs: audience health's figures on its asset (every audience fully acknowledged), and the
        # stakeholders' report beside the published copy, linked from its asset.
        [observed] = [e.event_specific_data.asset_observation.metadata for e in first.all_events
                      if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
                      and e.event_specific_data.asset_observation.asset_key.path == ["marts", "audience_health"]]
        assert observed["lowest_match_rate"].value == 1.0 and observed["exits_pending"].value == 0
        assert len(observed["audiences"].value.records) > 20
        [published] = [e.event_specific_data.materialization.metadata for e in first.all_events
                       if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
                       and e.event_specific_data.materialization.asset_key.path == ["stakeholders", "published_warehouse"]]
        assert os.path.getsize(published["report_path"].value) > 1_000_000  # plotly.js inlined
        held = synced_rows(warehouse)
        with duckdb.connect(str(warehouse), read_only=True) as con:
            # Every model row is held, or (an event) recorded as never to be sent, with the reason.
            skipped = dict(con.execute("select sync_name, count(*) from relay.sync_skipped group by 1").fetchall())
            for sync_name, rows in held.items():
                assert rows + skipped.get(sync_name, 0) == con.execute(f"select count(*) from syncs.{sync_name}").fetchone()[0], sync_name
        assert set(held) >= {"sync_customerio__people", "sync_cordial__contacts", "sync_talon_one__profiles"}
        people = emulators["customerio"].state.people
        assert len(people) == held["sync_customerio__people"]

        # The stakeholder copy exists, is read-only, and has the ledger.
        published = publish.published_path()
        assert not os.stat(published).st_mode & stat.S_IWUSR
        with publish.connect_published() as con:
            assert con.execute("select count(*) from relay.sync_runs").fetchone()[0] >= len(held)

        # Unchanged data: the second run sends nothing to any destination.
        before = requests(emulators)
        assert run(defs, "daily_full", instance).success
        assert requests(emulators) == before

        # One more hour of activity: the frequent path carries the changes.
        sample_data.append(warehouse, hours=1)
        frequent = run(defs, "frequent_path", instance)
        assert frequent.success
        assert sum(requests(emulators).values()) > sum(before.values())
        # dbt ran every gate test on the frequent path, and each passed (tests/test_gates.py: each one blocks).
        [results] = config.dbt_target_dir().glob(f"relay_dbt_models-{frequent.run_id[:7]}-*/run_results.json")
        status = {r["unique_id"]: r["status"] for r in json.loads(results.read_text())["results"]}
        manifest = json.loads((config.DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
        gates = [u for u, n in manifest["nodes"].items() if n["resource_type"] == "test" and "gate" in n["tags"]]
        assert len(gates) == 8 and {status.get(gate) for gate in gates} == {"pass"}, status
        # At most the data directory's first dbt command parsed the whole project; every later one started from
        # the parse the one before left (orchestration/dbt_runs.py). (The test's data directory shares its
        # worker's parse: tests/conftest.py.)
        ours = {r.run_id[:7] for r in instance.get_runs()}
        commands = sorted(d for d in config.dbt_target_dir().glob("relay_dbt_*") if d.name.split("-")[1] in ours)
        reparsed = [d.name for d in commands
                    if any("Unable to do partial parsing" in log.read_text() for log in d.glob("dbt.log*"))]
        assert len(commands) >= 4 and len(reparsed) <= 1, reparsed

        # A further day of churn through the frequent path, so that the schema judge (the `emulators`
        # fixture's teardown) sees a day's worth of changes, exits and audience moves as well.
        sample_data.append(warehouse, hours=24)
        after_hour = sum(requests(emulators).values())
        assert run(defs, "frequent_path", instance).success
        assert sum(requests(emulators).values()) > after_hour

    # The frequent syncs diffed only the people the scoped build rebuilt, and missed nothing: a diff over
    # every row finds the destinations holding exactly the models.
    frequent_specs = [spec for spec in SYNC_SPECS if spec.schedule == "frequent"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        covered = dict(con.execute("""
            select sync_name, arg_max(json_extract_string(plan, '$.diff'), started_at) from relay.sync_runs
            where mode = 'apply' group by 1""").fetchall())
    # (Events syncs always diff every event: append-only, new events can be anyone's.)
    assert {covered[spec.name] for spec in frequent_specs if not spec.events} == {"people dbt rebuilt since the last run"}
    assert {covered[spec.name] for spec in frequent_specs if spec.events} == {"everything: events are append-only"}
    for spec in frequent_specs:
        everything = SyncRun(replace(spec, scope_relation=None), destinations.build(spec.destination), warehouse,
                             apply=False).execute()
        assert (everything.plan["diff"].split(":")[0], everything.planned) == ("everything", 0), spec.name


def test_a_failing_dbt_test_blocks_every_sync(emulators, warehouse):
    config.export_environment()
    sample_data.generate(warehouse, customers=300, seed=3)
    with duckdb.connect(str(warehouse)) as con:  # a duplicated customer row: stg_shopify__customers' unique test fails
        con.execute("insert into shopify.customer select * from shopify.customer limit 1")
    from orchestration.definitions import defs

    with dg.instance_for_test() as instance:
        result = run(defs, "daily_full", instance)
    assert not result.success
    assert sum(requests(emulators).values()) == 0
    failed_checks = [e.event_specific_data for e in result.all_events
                     if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and not e.event_specific_data.passed]
    assert any("unique" in check.check_name for check in failed_checks)
