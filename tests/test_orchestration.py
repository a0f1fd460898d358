"""Dagster definitions: the asset graph, sensors, a real in-process run against the emulators, and a
broken upstream model blocking every sync."""

import json
import os
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from support.project import ROOT

SNAPSHOT = ROOT / "tests" / "snapshots" / "asset_graph.json"


@pytest.fixture(scope="module")
def defs():
    from orchestration.definitions import defs

    return defs


def graph_snapshot(defs) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {key.to_user_string(): graph.get(key).group_name for key in sorted(graph.get_all_asset_keys())}
    jobs = {}
    for name in ("frequent_path", "daily_full"):
        job = defs.resolve_job_def(name)
        jobs[name] = sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
    # The checks the frequent path runs (the daily job runs every one): a gate dropped from it shows here.
    frequent = defs.resolve_job_def("frequent_path").asset_layer.asset_graph.asset_check_keys
    checks = sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in frequent)
    return {"assets": assets, "jobs": jobs, "frequent_path_checks": checks}


def check_snapshot(current: dict, path: Path) -> None:
    """Only UPDATE_SNAPSHOTS=1 writes the snapshot; a missing one fails (writing it would pass with nothing reviewed)."""
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    if not path.exists():
        pytest.fail(f"{path} is missing: run this test with UPDATE_SNAPSHOTS=1 to write it, review it and commit it")
    assert current == json.loads(path.read_text())


def test_asset_graph_matches_the_reviewed_snapshot(defs):
    """Lineage drift shows up in review: regenerate with UPDATE_SNAPSHOTS=1 and commit the diff."""
    check_snapshot(graph_snapshot(defs), SNAPSHOT)


def test_a_missing_snapshot_fails_and_only_update_snapshots_writes_it(tmp_path, monkeypatch):
    path, graph = tmp_path / "snapshots" / "graph.json", {"assets": {"a": "raw"}, "jobs": {}}
    monkeypatch.delenv("UPDATE_SNAPSHOTS", raising=False)
    with pytest.raises(pytest.fail.Exception, match="UPDATE_SNAPSHOTS=1"):
        check_snapshot(graph, path)
    assert not path.exists()
    monkeypatch.setenv("UPDATE_SNAPSHOTS", "1")
    check_snapshot(graph, path)
    monkeypatch.delenv("UPDATE_SNAPSHOTS")
    check_snapshot(graph, path)
    with pytest.raises(AssertionError):
        check_snapshot({**graph, "jobs": {"daily_full": ["a"]}}, path)


def test_every_sync_model_has_a_sync_asset_downstream_of_it(defs):
    from orchestration.syncs import SYNC_SPECS, sync_asset_key

    graph = defs.resolve_asset_graph()
    assert {s.destination for s in SYNC_SPECS} == {"customerio", "cordial", "talon_one"}
    for spec in SYNC_SPECS:
        node = graph.get(sync_asset_key(spec))
        # A membership or events sync also follows its destination's attribute syncs (a person's memberships
        # and events follow the person, and what a merge moved is found at the survivor).
        people = {s.name for s in SYNC_SPECS if spec.object != "attributes" and s.destination == spec.destination
                  and s.object == "attributes"}
        assert sorted(k.path[-1] for k in node.parent_keys) == sorted({spec.name, *people})
        assert spec.object == "attributes" or people, spec.name
        assert node.group_name == "destinations"
    frequent = set(graph_snapshot(defs)["jobs"]["frequent_path"])
    assert {sync_asset_key(s).to_user_string() for s in SYNC_SPECS if s.schedule == "frequent"} <= frequent


def test_each_destination_syncs_in_a_lane_of_its_own(defs):
    """Lanes run side by side; within one, people first; a failed people sync stops its lane's later syncs
    (they follow the person), not the other lanes; an exception is reported with its sync."""
    import dataclasses
    import threading
    import time

    from orchestration.syncs import SYNC_SPECS, run_lanes

    specs = sorted(SYNC_SPECS, key=lambda s: s.object == "attributes")  # people last: the lanes must reorder
    spans, lock = {}, threading.Lock()

    def run_one(spec, fail=()):
        start = time.monotonic()
        time.sleep(0.3)
        with lock:
            spans[spec.name] = (start, time.monotonic())
        if spec.name in fail:
            raise RuntimeError(f"{spec.name} broke")
        return dataclasses.make_dataclass("Result", ["status"])("succeeded")

    started = time.monotonic()
    ended = list(run_lanes(specs, run_one))
    elapsed = time.monotonic() - started
    longest = max(sum(1 for s in specs if s.destination == d) for d in {s.destination for s in specs})
    assert {spec.name for spec, _, _ in ended} == {s.name for s in specs} and not any(e for _, _, e in ended)
    assert elapsed < 0.3 * (longest + 1) < 0.3 * len(specs), (elapsed, longest)
    for spec in specs:
        if spec.object != "attributes":
            people = [s for s in specs if s.destination == spec.destination and s.object == "attributes"]
            assert all(spans[p.name][1] <= spans[spec.name][0] for p in people), spec.name

    people = next(s for s in specs if s.destination == "customerio" and s.object == "attributes")
    spans.clear()
    outcome = {spec.name: (result, error) for spec, result, error in run_lanes(specs, lambda s: run_one(s, [people.name]))}
    assert f"RuntimeError: {people.name} broke" in outcome[people.name][1]
    for spec in specs:
        if spec.destination == "customerio" and spec is not people:
            assert outcome[spec.name] == (None, f"not run: {people.name} did not succeed") and spec.name not in spans
        elif spec.destination != "customerio":
            assert outcome[spec.name][0].status == "succeeded", spec.name


def test_the_dbt_start_up_costs_relay_skips_are_still_the_ones_dagster_dbt_pays():
    """orchestration.dbt.RelayDbtCliResource overrides two dagster-dbt internals; if an upgrade renames them,
    the override would silently stop saving anything."""
    import importlib.metadata
    import inspect

    from dagster_dbt import DbtCliResource
    from orchestration.dbt import dbt_resource

    cli = inspect.getsource(DbtCliResource.cli)
    assert "self._cli_version" in cli and "self._initialize_dbt_core_adapter(" in cli
    resource = dbt_resource()
    assert str(resource._cli_version) == importlib.metadata.version("dbt-core")
    assert resource._initialize_dbt_core_adapter(["build"]) is None


def test_schedules_run_by_default(defs):
    schedules = {s.name: s for s in defs.schedules}
    assert schedules["frequent_path_schedule"].default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedules["frequent_path_schedule"].cron_schedule == "*/10 * * * *"


def _raw_orders(warehouse: Path, synced: str) -> None:
    con = duckdb.connect(str(warehouse))
    con.execute("create schema if not exists shopify")
    for table in ("order", "abandoned_checkout", "customer"):
        con.execute(f'create or replace table shopify."{table}" as select timestamp \'{synced}\' as _fivetran_synced')
    con.close()


def test_raw_data_sensor_starts_the_frequent_path_once_per_new_watermark(warehouse):
    from orchestration.sensors import raw_data_sensor

    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance)
        assert isinstance(raw_data_sensor(context), dg.SkipReason)  # no warehouse yet
        _raw_orders(warehouse, "2026-11-01 00:00:00")
        request = raw_data_sensor(context)
        assert isinstance(request, dg.RunRequest) and request.run_key == "raw-2026-11-01 00:00:00"
        again = raw_data_sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor))
        assert isinstance(again, dg.SkipReason) and "no new raw data" in again.skip_message
        _raw_orders(warehouse, "2026-11-01 01:00:00")
        assert isinstance(raw_data_sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor)), dg.RunRequest)


def test_raw_data_sensor_keeps_off_the_warehouse_while_a_run_is_active(warehouse):
    from orchestration.sensors import raw_data_sensor

    _raw_orders(warehouse, "2026-11-01 00:00:00")
    with dg.instance_for_test() as instance:
        instance.add_run(dg.DagsterRun(job_name="daily_full", run_id="r1", status=dg.DagsterRunStatus.STARTED))
        result = raw_data_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.SkipReason) and "run is active" in result.skip_message


def test_run_failure_sensor_records_the_failure(tmp_path):
    from orchestration.sensors import run_failure_alert
    from relay import config

    @dg.op
    def explode():
        raise RuntimeError("boom")

    @dg.job
    def failing():
        explode()

    with dg.instance_for_test() as instance:
        result = failing.execute_in_process(instance=instance, raise_on_error=False)
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert", dagster_event=failure, dagster_instance=instance,
            dagster_run=result.dagster_run).for_run_failure()
        run_failure_alert(context)
    lines = (config.data_dir() / "alerts" / "run_failures.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["run_id"] == result.run_id


def test_the_group_lineage_reads_by_layer(defs):
    """Every dependency between two groups goes left to right through the layers; the bookkeeping models (the
    scope of a scoped run, the data clock, the build log) sit in a group of their own beside them."""
    layers = ["raw", "staging", "identity", "lifecycle", "health", "segments", "events", "syncs", "destinations",
              "stakeholders"]
    graph = defs.resolve_asset_graph()
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == {*layers, "bookkeeping"}, groups
    backwards = [f"{parent.to_user_string()} -> {key.to_user_string()}"
                 for key in graph.get_all_asset_keys() for parent in graph.get(key).parent_keys
                 if "bookkeeping" not in (up := graph.get(parent).group_name, down := graph.get(key).group_name)
                 and layers.index(up) > layers.index(down)]
    assert not backwards, backwards[:5]


def test_a_partial_run_alerts_like_a_failed_one(tmp_path, monkeypatch):
    """run_partial_alert: a run whose sync left refused rows (status partial) writes an alert."""
    from orchestration.sensors import run_partial_alert

    monkeypatch.setenv("RELAY_DATA_DIR", str(tmp_path / "data"))

    @dg.asset(key=dg.AssetKey(["destinations", "customerio", "sync_x"]))
    def sync_x():
        return dg.MaterializeResult(metadata={"status": "partial", "rows_rejected": 2})

    with dg.instance_for_test() as instance:
        result = dg.materialize([sync_x], instance=instance)
        success = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_SUCCESS] or \
            [r.event_log_entry.dagster_event for r in instance.get_records_for_run(
                result.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS).records]
        context = dg.build_run_status_sensor_context(sensor_name="run_partial_alert", dagster_instance=instance,
                                                     dagster_run=result.dagster_run, dagster_event=success[0])
        run_partial_alert(context)
    [record] = [json.loads(line) for line in (tmp_path / "data" / "alerts" / "run_failures.jsonl").read_text().splitlines()]
    assert record["outcome"] == "partial" and record["steps"] == ["destinations/customerio/sync_x"], record
