"""One sync asset per sync model declared in the dbt manifest (meta.sync). Nothing here is per sync."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from orchestration.dbt import relay_dbt_models
from orchestration.project import relay_dbt_project
from relay import pipeline
from sinks.declarations import SyncSpec, load_specs


class SyncEngine(dg.ConfigurableResource):
    """The sync engine as a resource: destinations and secrets are read from the environment at run time."""

    full_resync: bool = False
    allow_large_change: bool = False

    def run(self, spec: SyncSpec):
        return pipeline.run_sync(spec, full_resync=self.full_resync, allow_large_change=self.allow_large_change)


def sync_asset_key(spec: SyncSpec) -> dg.AssetKey:
    return dg.AssetKey(["destinations", spec.destination, spec.name])


def _metadata(spec: SyncSpec, result) -> dict:
    """What a sync asset's materialization shows of its run."""
    metadata = {
        "status": result.status,
        "rows_added": result.acked_add,
        "rows_changed": result.acked_change,
        "rows_removed": result.acked_remove,
        "rows_merged": result.acked_merge,
        "rows_rejected": result.rejected,
        "rows_skipped": result.skipped,
        "rows_unsent": result.unsent,
        "requests": result.requests,
        "retries": result.retries,
        "throttled": result.throttled,
        "duration_s": result.duration_s,
        "rows_per_s": result.rows_per_s,
        "plan": dg.MetadataValue.json(result.plan.get("counts", {})),
        "run_id": result.run_id,
    }
    if result.plan.get("merges"):  # identity merges: outcomes, the destination's note, samples
        metadata["merges"] = dg.MetadataValue.json(result.plan["merges"])
    if spec.events:  # by event name, and by why an event will never be sent
        metadata["events"] = dg.MetadataValue.json(result.plan.get("events", {}))
        metadata["skipped_by_reason"] = dg.MetadataValue.json(result.plan.get("skipped", {}))
    return metadata


def _sync_asset(spec: SyncSpec, specs: list[SyncSpec]) -> dg.AssetsDefinition:
    key = sync_asset_key(spec)
    # A membership or events sync runs after the destination's attribute syncs: a person's memberships and
    # events follow the person, and what a merge moved there is found at the survivor (sinks/engine/merges.py).
    people = [sync_asset_key(s) for s in specs if spec.object != "attributes" and s.destination == spec.destination
              and s.object == "attributes"]

    @dg.asset(
        key=key,
        deps=[get_asset_key_for_model([relay_dbt_models], spec.name), *people],
        group_name="destinations",
        kinds={spec.destination, "python"},
        tags={"schedule": spec.schedule},
        description=f"Sends the changes of dbt model {spec.name} to {spec.destination} ({spec.object}, on exit: {spec.on_exit}).",
        check_specs=[
            dg.AssetCheckSpec("blast_radius", asset=key, blocking=True,
                              description="The run did not change or remove an abnormal share of what the destination holds."),
            dg.AssetCheckSpec("rejections", asset=key,
                              description="Share of planned rows the destination rejected (warns above 1%)."),
        ],
    )
    def _sync(context: dg.AssetExecutionContext, sync_engine: SyncEngine):
        result = sync_engine.run(spec)
        metadata = _metadata(spec, result)
        if result.status == "refused":
            yield dg.AssetCheckResult(check_name="blast_radius", passed=False, metadata={"message": result.message})
            raise dg.Failure(description=result.message, metadata=metadata)
        if result.status == "failed":
            raise dg.Failure(description=result.message or "sync failed", metadata=metadata)
        share = result.rejected / result.planned if result.planned else 0.0
        yield dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                dg.AssetCheckResult(check_name="blast_radius", passed=True),
                dg.AssetCheckResult(check_name="rejections", passed=share <= 0.01,
                                    severity=dg.AssetCheckSeverity.WARN,
                                    metadata={"rejected_share": round(share, 4), "rejected": result.rejected}),
            ],
        )
        if result.unsent:
            context.log.warning(f"{result.unsent} rows were not acknowledged; they will be resent next run")

    return _sync


SYNC_SPECS = load_specs(relay_dbt_project().manifest_path)
sync_assets = [_sync_asset(spec, SYNC_SPECS) for spec in SYNC_SPECS]
