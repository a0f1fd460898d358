"""The sync assets: one per sync model declared in the dbt manifest (meta.sync), all in one step that runs each
destination's syncs side by side. Nothing here is per sync."""

import queue
import threading
import traceback

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from orchestration.dbt import relay_dbt_models
from orchestration.metadata import sync_metadata
from orchestration.project import relay_dbt_project
from relay import config, pipeline
from sinks.declarations import SyncSpec, load_specs


class SyncEngine(dg.ConfigurableResource):
    """The sync engine as a resource: destinations and secrets are read from the environment at run time."""

    full_resync: bool = False
    allow_large_change: bool = False

    def run(self, spec: SyncSpec, orchestrator_run_id: str | None = None):
        return pipeline.run_sync(spec, full_resync=self.full_resync, allow_large_change=self.allow_large_change,
                                 orchestrator_run_id=orchestrator_run_id)


def sync_asset_key(spec: SyncSpec) -> dg.AssetKey:
    return dg.AssetKey(["destinations", spec.destination, spec.name])


def _asset_spec(spec: SyncSpec, specs: list[SyncSpec]) -> dg.AssetSpec:
    # A membership or events sync runs after the destination's attribute syncs: a person's memberships and
    # events follow the person, and what a merge moved there is found at the survivor (sinks/engine/merges.py).
    people = [sync_asset_key(s) for s in specs if spec.object != "attributes" and s.destination == spec.destination
              and s.object == "attributes"]
    return dg.AssetSpec(
        sync_asset_key(spec), deps=[get_asset_key_for_model([relay_dbt_models], spec.name), *people],
        group_name="destinations", kinds={spec.destination, "python"}, tags={"schedule": spec.schedule},
        description=f"Sends the changes of dbt model {spec.name} to {spec.destination} ({spec.object}, on exit: {spec.on_exit}).")


def _check_specs(spec: SyncSpec) -> list[dg.AssetCheckSpec]:
    key = sync_asset_key(spec)
    return [
        dg.AssetCheckSpec("blast_radius", asset=key, blocking=True,
                          description="The run did not change or remove an abnormal share of what the destination holds."),
        dg.AssetCheckSpec("rejections", asset=key,
                          description="The destination refused no row (a warning; an error above "
                                      "RELAY_MAX_REJECTED_SHARE of the planned rows, default 1%)."),
    ]


def lanes(specs: list[SyncSpec]) -> list[list[SyncSpec]]:
    """One lane per destination, its attribute syncs first: a lane's syncs run one after another (they share
    the destination's rate limit), lanes side by side (each mostly waits on its destination)."""
    by_destination: dict[str, list[SyncSpec]] = {}
    for spec in sorted(specs, key=lambda s: s.object != "attributes"):
        by_destination.setdefault(spec.destination, []).append(spec)
    return list(by_destination.values())


def run_lanes(specs: list[SyncSpec], run_one):
    """Yields (spec, result, error) as each sync ends; error is a message when it raised or was not run. When
    an attribute sync does not succeed, the lane's later syncs are not run (they follow the person)."""
    ended: queue.Queue = queue.Queue()

    def lane(mine: list[SyncSpec]) -> None:
        blocked = None
        for spec in mine:
            if blocked:
                ended.put((spec, None, f"not run: {blocked} did not succeed"))
                continue
            try:
                result, error = run_one(spec), None
            except Exception as exc:  # reported with its sync; the other lanes go on
                result, error = None, "".join(traceback.format_exception(exc)).rstrip()
            ended.put((spec, result, error))
            if spec.object == "attributes" and (error or result.status in ("refused", "failed")):
                blocked = spec.name

    threads = [threading.Thread(target=lane, args=(mine,), name=f"sync-{mine[0].destination}") for mine in lanes(specs)]
    for thread in threads:
        thread.start()
    for _ in specs:
        yield ended.get()
    for thread in threads:
        thread.join()


def _outcome(spec: SyncSpec, result):
    """The events that record one sync's run, and what failed it (None when it did not fail)."""
    key = sync_asset_key(spec)
    metadata = sync_metadata(spec, result, pipeline.refusals(result.run_id) if result.rejected else [])
    if result.status == "refused":
        return [dg.AssetCheckResult(asset_key=key, check_name="blast_radius", passed=False,
                                    metadata={"message": result.message})], result.message
    if result.status == "failed":
        return [], result.message or "sync failed"
    share = result.rejected / result.planned if result.planned else 0.0
    limit = config.number("RELAY_MAX_REJECTED_SHARE")
    return [dg.MaterializeResult(asset_key=key, metadata=metadata, check_results=[
        dg.AssetCheckResult(asset_key=key, check_name="blast_radius", passed=True),
        # Any refused row fails the check: a run with refusals is never just a green tick.
        dg.AssetCheckResult(asset_key=key, check_name="rejections", passed=not result.rejected,
                            severity=dg.AssetCheckSeverity.WARN if share <= limit else dg.AssetCheckSeverity.ERROR,
                            metadata={"rejected_share": round(share, 4), "rejected": result.rejected,
                                      **({"rejections": metadata["rejections"]} if result.rejected else {})}),
    ])], None


SYNC_SPECS = load_specs(relay_dbt_project().manifest_path)


@dg.multi_asset(
    name="destinations", specs=[_asset_spec(s, SYNC_SPECS) for s in SYNC_SPECS],
    check_specs=[check for s in SYNC_SPECS for check in _check_specs(s)], can_subset=True,
    description="Each selected sync sends its model's changes; each destination's syncs run in a lane of their own.",
)
def sync_assets(context: dg.AssetExecutionContext, sync_engine: SyncEngine):
    selected = [s for s in SYNC_SPECS if sync_asset_key(s) in context.selected_asset_keys]
    failed = {}
    for spec, result, error in run_lanes(selected, lambda s: sync_engine.run(s, context.run.run_id)):
        if result is not None:
            events, error = _outcome(spec, result)
            yield from events
            if result.unsent:
                context.log.warning(f"{spec.name}: {result.unsent} rows were not acknowledged; they will be resent next run")
        if error:
            context.log.error(f"{spec.name}: {error}")
            counts = {k: v for k, v in (sync_metadata(spec, result, []) if result else {}).items()
                      if isinstance(v, (int, float, str))}
            failed[spec.name] = {"error": error, **counts}
    if failed:
        # The other lanes ran to the end: what they delivered is recorded above, and a retry of this step
        # finds nothing left to send for them.
        raise dg.Failure(description="\n".join(f"{name}: {_last_line(f['error'])}" for name, f in failed.items()),
                         metadata={name: dg.MetadataValue.json(f) for name, f in failed.items()})


def _last_line(error: str) -> str:
    """A traceback's last line (the exception), or a message's first."""
    lines = error.splitlines()
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]
