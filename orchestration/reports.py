"""The dbt models that read what the syncs wrote (tag after_syncs: marts.audience_health and its checks): a
dbt step of their own that runs after every sync asset (the daily job), so its figures are the run's."""

from typing import Any, Mapping

import dagster as dg
from dagster_dbt import DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.dbt import AFTER_SYNCS, RelayTranslator
from orchestration.project import relay_dbt_project
from orchestration.syncs import sync_assets


class AfterSyncsTranslator(RelayTranslator):
    """Each after_syncs model depends on every sync asset (its step waits for them all)."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if "after_syncs" in (manifest["nodes"].get(unique_id) or {}).get("tags", []):
            spec = spec.merge_attributes(deps=[asset.key for asset in sync_assets])
        return spec


@dbt_assets(manifest=relay_dbt_project().manifest_path, project=relay_dbt_project(), select=AFTER_SYNCS,
            name="relay_dbt_reports",
            dagster_dbt_translator=AfterSyncsTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)))
def relay_dbt_reports(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()
