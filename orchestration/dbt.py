"""dbt models as Dagster assets, grouped by the layer folder, with dbt data tests as asset checks."""

import json
from typing import Any, Mapping

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.project import relay_dbt_project
from relay.pipeline import dbt_executable

# Groups follow how analytics engineers think: staging, identity, lifecycle, segments, syncs. dbt config
# decides (`meta: {dagster: {group: ...}}`, set per folder in dbt_project.yml); otherwise staging/ and
# syncs/ group by layer and the other folders by their area subfolder.
LAYER_GROUPS = {"staging", "syncs"}


def _meta(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return (props.get("config") or {}).get("meta") or props.get("meta") or {}


class RelayTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return "raw"
        configured = (_meta(dbt_resource_props).get("dagster") or {}).get("group")
        if configured:
            return configured
        folders = dbt_resource_props["fqn"][1:-1]
        if not folders:
            return "default"
        if folders[0] in LAYER_GROUPS or len(folders) == 1:
            return folders[0]
        return folders[1]

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str] | None:
        owner = _meta(dbt_resource_props).get("owner")
        if isinstance(owner, str) and ("@" in owner or owner.startswith("team:")):
            return [owner]
        return None


translator = RelayTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(manifest=relay_dbt_project().manifest_path, dagster_dbt_translator=translator, project=relay_dbt_project())
def relay_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    # `build` runs tests right after each model: a failing test stops everything downstream of it,
    # including the sync assets, so a broken model never reaches a destination.
    yield from dbt.cli(["build"], context=context).stream()


def raw_source_specs() -> list[dg.AssetSpec]:
    """Raw tables as external assets: landed by Fivetran (or Segment), observed, never materialized here."""
    project = relay_dbt_project()
    manifest = json.loads(project.manifest_path.read_text())
    specs = []
    for unique_id, source in sorted(manifest["sources"].items()):
        freshness = source.get("freshness") or {}
        specs.append(dg.AssetSpec(
            key=translator.get_asset_spec(manifest, unique_id, project).key,
            group_name="raw",
            description=source.get("description") or source.get("source_description"),
            kinds={"duckdb"},
            metadata={
                "loaded_at_field": source.get("loaded_at_field") or "",
                "freshness_warn_after": json.dumps((freshness.get("warn_after") or {})),
                "freshness_error_after": json.dumps((freshness.get("error_after") or {})),
                "optional_source": bool((source.get("source_meta") or {}).get("optional")),
            },
        ))
    return specs


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=relay_dbt_project(), dbt_executable=dbt_executable())
