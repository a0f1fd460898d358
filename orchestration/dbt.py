"""dbt models as Dagster assets, grouped by the layer folder, with dbt data tests as asset checks."""

import functools
import importlib.metadata
import json
from datetime import datetime, timezone
from typing import Any, Mapping

import dagster as dg
import duckdb
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets
from packaging import version

from orchestration.dbt_runs import dbt_cli
from orchestration.preflight import PREFLIGHT_KEY
from orchestration.project import relay_dbt_project
from relay import config
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

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        upstream = (manifest["nodes"].get(unique_id) or {}).get("depends_on", {}).get("nodes", [])
        # A model reading raw tables waits for the preflight: a run that cannot deliver stops before dbt.
        if any(node.startswith("source.") for node in upstream):
            spec = spec.merge_attributes(deps=[PREFLIGHT_KEY])
        return spec

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str] | None:
        owner = _meta(dbt_resource_props).get("owner")
        if isinstance(owner, str) and ("@" in owner or owner.startswith("team:")):
            return [owner]
        return None


translator = RelayTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


FREQUENT_JOB = "frequent_path"


# Models tagged after_syncs read what the syncs wrote (audience health): orchestration/reports.py runs them.
AFTER_SYNCS = "tag:after_syncs"


@dbt_assets(manifest=relay_dbt_project().manifest_path, dagster_dbt_translator=translator, project=relay_dbt_project(),
            exclude=AFTER_SYNCS)
def relay_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    # `build` runs tests right after each model: a failing test stops everything downstream of it,
    # including the sync assets, so a broken model never reaches a destination.
    # The frequent path is a scoped run (dbt_project/macros/scope/): it recomputes only what changed
    # since the last complete build. Every other run (the daily job, a materialization from the UI)
    # rebuilds from scratch, so any drift lasts at most a day.
    # Unit tests check the SQL, not the data, so no scheduled run repeats them (dbt's advice): make test and
    # relay build run them.
    frequent = context.run.job_name == FREQUENT_JOB
    args = ["build", "--exclude", "resource_type:unit_test"] + ([] if frequent else ["--full-refresh"])
    yield from dbt_cli(dbt, args, context)


@functools.cache
def _sources() -> list[tuple[dg.AssetKey, dict]]:
    """(asset key, manifest node) per raw source; read once per process, not on every sensor tick."""
    project = relay_dbt_project()
    manifest = json.loads(project.manifest_path.read_text())
    return [(translator.get_asset_spec(manifest, unique_id, project).key, source)
            for unique_id, source in sorted(manifest["sources"].items())]


def raw_relation(source_name: str, table: str) -> str:
    """Where a raw table lives, as the manifest resolved it from the dbt vars (schema, identifier)."""
    for _, source in _sources():
        if source["source_name"] == source_name and source["name"] == table:
            return f'"{source["schema"]}"."{source["identifier"]}"'
    raise KeyError(f"no source {source_name}.{table} in the dbt manifest")


def raw_source_specs() -> list[dg.AssetSpec]:
    """Raw tables as external assets: landed by Fivetran (or Segment), observed, never materialized here."""
    specs = []
    for key, source in _sources():
        freshness = source.get("freshness") or {}
        specs.append(dg.AssetSpec(
            key=key,
            group_name="raw",
            description=source.get("description") or source.get("source_description"),
            kinds={"duckdb"},
            metadata={
                "loaded_at_field": source.get("loaded_at_field") or "",
                "freshness_warn_after": json.dumps((freshness.get("warn_after") or {})),
                "freshness_error_after": json.dumps((freshness.get("error_after") or {})),
                "optional_source": _optional(source),
            },
        ))
    return specs


def _optional(source: dict) -> bool:
    """Whether the raw table may be absent: its source or the table itself says `meta: {optional: true}`."""
    table_meta = source.get("meta") or (source.get("config") or {}).get("meta") or {}
    return bool((source.get("source_meta") or {}).get("optional") or table_meta.get("optional"))


_PERIODS = {"minute": 60, "hour": 3600, "day": 86400}


def _seconds(threshold: dict | None) -> float | None:
    if not threshold or not threshold.get("count"):
        return None
    return threshold["count"] * _PERIODS[threshold.get("period", "hour")]


def source_clock(con: duckdb.DuckDBPyConnection) -> tuple[datetime, str]:
    """"Now" for judging how late the loaders are: the wall clock (UTC). Sample data (relay sample-data) plays
    a shop in a time of its own that ends at its as-of: there, now is the as-of plus the time since it landed,
    so data generated a minute ago is a minute old and data nobody appended to for a day is a day old."""
    wall = datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        row = con.execute("select as_of, landed_at from _relay_sample.params").fetchone()
    except duckdb.CatalogException:  # a real warehouse
        return wall, "wall clock (UTC)"
    if not row or row[1] is None:  # sample data from before landed_at was recorded: its landing is unknown
        return wall, "wall clock (UTC)"
    as_of, landed_at = row
    return as_of + (wall - landed_at), f"sample data: as of {as_of}, landed {landed_at:%Y-%m-%d %H:%M:%S} UTC"


def raw_freshness_check() -> dg.AssetChecksDefinition:
    """Freshness of every raw table from its loaded-at field (`_fivetran_synced`, Segment's `received_at`),
    against the dbt source's warn_after / error_after: the same contract `dbt source freshness` uses."""
    sources = _sources()

    @dg.multi_asset_check(
        name="raw_freshness",
        specs=[dg.AssetCheckSpec("freshness", asset=key, description="Newest loaded-at value is within the dbt "
                                 "source's warn_after (warns) and error_after (errors).") for key, _ in sources],
    )
    def _raw_freshness(context: dg.AssetCheckExecutionContext):
        with duckdb.connect(str(config.warehouse_path()), read_only=True) as con:
            now, clock = source_clock(con)
            for key, source in sources:
                relation = f'"{source["schema"]}"."{source["identifier"]}"'
                optional = _optional(source)
                try:
                    # try_cast: a loader may land the loaded-at column as text.
                    newest = con.execute(f'select max(try_cast("{source["loaded_at_field"]}" as timestamp)) '
                                         f'from {relation}').fetchone()[0]
                except duckdb.CatalogException:
                    yield dg.AssetCheckResult(asset_key=key, check_name="freshness", passed=optional,
                                              metadata={"status": "table absent" + (" (optional source)" if optional else "")})
                    continue
                freshness = source.get("freshness") or {}
                warn, error = _seconds(freshness.get("warn_after")), _seconds(freshness.get("error_after"))
                lag = (now - newest).total_seconds() if newest else None
                late_error = lag is None or (error is not None and lag > error)
                late_warn = lag is None or (warn is not None and lag > warn)
                yield dg.AssetCheckResult(
                    asset_key=key, check_name="freshness", passed=not (late_error or late_warn),
                    severity=dg.AssetCheckSeverity.ERROR if late_error else dg.AssetCheckSeverity.WARN,
                    metadata={"newest_loaded_at": str(newest), "lag_hours": round(lag / 3600, 2) if lag else None,
                              "judged_at": str(now), "clock": clock,
                              "warn_after_hours": warn and warn / 3600, "error_after_hours": error and error / 3600},
                )

    return _raw_freshness


class RelayDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without two start-up costs a scheduled run pays for nothing: `dbt --version` in
    a process of its own (the dbt beside this Python is the installed dbt-core), and a dbt adapter loaded in
    this process, which serves only fetch_row_counts/fetch_column_metadata (unused here). Both are
    dagster-dbt internals: tests/test_orchestration.py fails when an upgrade renames them."""

    @property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None


def dbt_resource() -> DbtCliResource:
    return RelayDbtCliResource(project_dir=relay_dbt_project(), dbt_executable=dbt_executable())


raw_freshness = raw_freshness_check()
