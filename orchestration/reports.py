"""The dbt models that read what the syncs wrote (tag after_syncs: marts.audience_health and its checks): a
dbt step of their own that runs after every sync asset (the daily job), so its figures are the run's."""

from typing import Any, Mapping

import dagster as dg
import duckdb
from dagster_dbt import DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.dbt import AFTER_SYNCS, RelayTranslator
from orchestration.dbt_runs import dbt_cli
from orchestration.project import relay_dbt_project
from orchestration.syncs import sync_assets
from relay import config


class AfterSyncsTranslator(RelayTranslator):
    """Each after_syncs model depends on every sync asset (its step waits for them all)."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if "after_syncs" in (manifest["nodes"].get(unique_id) or {}).get("tags", []):
            spec = spec.merge_attributes(deps=list(sync_assets.keys))
        return spec


@dbt_assets(manifest=relay_dbt_project().manifest_path, project=relay_dbt_project(), select=AFTER_SYNCS,
            name="relay_dbt_reports",
            dagster_dbt_translator=AfterSyncsTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)))
def relay_dbt_reports(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt_cli(dbt, ["build"], context)
    if AUDIENCE_HEALTH in context.selected_asset_keys:
        yield audience_health_figures()


AUDIENCE_HEALTH = dg.AssetKey(["marts", "audience_health"])
FIGURES = (("members", "int"), ("match_rate", "float"), ("unreachable_members", "int"), ("stuck_members", "int"),
           ("exits_pending", "int"), ("exits_refused", "int"))


def audience_health_figures() -> dg.AssetObservation:
    """Today's figures per audience, on the asset (its checks say which cross a threshold; this says by how much)."""
    with duckdb.connect(str(config.warehouse_path()), read_only=True) as con:
        rows = con.execute(f"""
            select destination, audience, {', '.join(name for name, _ in FIGURES)} from marts.audience_health
            where planned_members is not null order by destination, audience""").fetchall()
    schema = dg.TableSchema(columns=[dg.TableColumn("destination", "string"), dg.TableColumn("audience", "string"),
                                     *(dg.TableColumn(name, kind) for name, kind in FIGURES)])
    names = ["destination", "audience", *(name for name, _ in FIGURES)]
    return dg.AssetObservation(asset_key=AUDIENCE_HEALTH, metadata={
        "audiences": dg.MetadataValue.table([dg.TableRecord(dict(zip(names, row))) for row in rows], schema=schema),
        "lowest_match_rate": min((row[3] for row in rows if row[3] is not None), default=1.0),
        "stuck_members": sum(row[5] or 0 for row in rows),
        "unreachable_members": sum(row[4] or 0 for row in rows),
        "exits_pending": sum(row[6] or 0 for row in rows),
    })
