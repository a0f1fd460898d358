"""dbt models as Dagster assets, grouped by the layer folder, with dbt data tests as asset checks."""

from typing import Any, Mapping

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.project import relay_dbt_project
from relay.pipeline import dbt_executable

# staging/<source>/ and syncs/<destination>/ group by layer; intermediate/ and marts/ by their area folder
# (identity, lifecycle, segments), which is how analytics engineers think about them.
LAYER_GROUPS = {"staging", "syncs"}


class RelayTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return "raw"
        folders = dbt_resource_props["fqn"][1:-1]
        if not folders:
            return "default"
        if folders[0] in LAYER_GROUPS or len(folders) == 1:
            return folders[0]
        return folders[1]

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str] | None:
        meta = (dbt_resource_props.get("config") or {}).get("meta") or dbt_resource_props.get("meta") or {}
        owner = meta.get("owner")
        if isinstance(owner, str) and ("@" in owner or owner.startswith("team:")):
            return [owner]
        return None


translator = RelayTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(manifest=relay_dbt_project().manifest_path, dagster_dbt_translator=translator, project=relay_dbt_project())
def relay_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    # `build` runs tests right after each model: a failing test stops everything downstream of it,
    # including the sync assets, so a broken model never reaches a destination.
    yield from dbt.cli(["build"], context=context).stream()


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=relay_dbt_project(), dbt_executable=dbt_executable())
