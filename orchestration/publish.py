"""The stakeholder copy as an asset: refreshed after the syncs, so its lineage shows what it contains."""

import dagster as dg

from orchestration.dbt import relay_dbt_models
from orchestration.reports import relay_dbt_reports
from orchestration.syncs import sync_assets
from orchestration.schedules import PUBLISHED_KEY
from relay import publish, report


@dg.asset(
    key=PUBLISHED_KEY,
    deps=[*sync_assets.keys, *relay_dbt_models.keys, *relay_dbt_reports.keys],
    group_name="stakeholders",
    kinds={"duckdb"},
    description="Read-only snapshot of the warehouse (customers, segments, history, sync ledger, reporting marts) "
                "that stakeholders query at any time, also while runs write; replaced atomically after each run, "
                "with the HTML report (relay report) beside it.",
)
def published_warehouse(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    result = publish.publish()
    page = report.write()
    return dg.MaterializeResult(metadata={
        "path": result["path"], "size_mb": round(result["bytes"] / 1e6, 1), "publish_seconds": result["seconds"],
        # what this publish wrote: the part of the warehouse that changed since the generation it refreshed
        "written_mb": round(result["written_bytes"] / 1e6, 1), "generation": result["generation"],
        # what it then wrote to the generation it replaced, so the next publish starts one change behind
        "caught_up_mb": round(result["caught_up_bytes"] / 1e6, 1),
        "report": dg.MetadataValue.url(page.as_uri()), "report_path": dg.MetadataValue.path(str(page))})
