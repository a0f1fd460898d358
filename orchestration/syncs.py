"""One sync asset per sync model declared in the dbt manifest (meta.sync). Nothing here is per sync."""

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
                              description="The destination refused no row (a warning; an error above "
                                          "RELAY_MAX_REJECTED_SHARE of the planned rows, default 1%)."),
        ],
    )
    def _sync(context: dg.AssetExecutionContext, sync_engine: SyncEngine):
        result = sync_engine.run(spec, context.run.run_id)
        metadata = sync_metadata(spec, result, pipeline.refusals(result.run_id) if result.rejected else [])
        if result.status == "refused":
            yield dg.AssetCheckResult(check_name="blast_radius", passed=False, metadata={"message": result.message})
            raise dg.Failure(description=result.message, metadata=metadata)
        if result.status == "failed":
            raise dg.Failure(description=result.message or "sync failed", metadata=metadata)
        share = result.rejected / result.planned if result.planned else 0.0
        limit = config.number("RELAY_MAX_REJECTED_SHARE")
        yield dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                dg.AssetCheckResult(check_name="blast_radius", passed=True),
                # Any refused row fails the check: a run with refusals is never just a green tick.
                dg.AssetCheckResult(check_name="rejections", passed=not result.rejected,
                                    severity=dg.AssetCheckSeverity.WARN if share <= limit else dg.AssetCheckSeverity.ERROR,
                                    metadata={"rejected_share": round(share, 4), "rejected": result.rejected,
                                              **({"rejections": metadata["rejections"]} if result.rejected else {})}),
            ],
        )
        if result.unsent:
            context.log.warning(f"{result.unsent} rows were not acknowledged; they will be resent next run")

    return _sync


SYNC_SPECS = load_specs(relay_dbt_project().manifest_path)
sync_assets = [_sync_asset(spec, SYNC_SPECS) for spec in SYNC_SPECS]
