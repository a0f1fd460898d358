"""Two paths: a frequent one for time-critical segments (cart windows, eligibility revocation: a purchase
must reach the destinations within minutes) and a daily one for everything."""

import dagster as dg
from dagster_dbt import build_dbt_asset_selection

from orchestration.dbt import FREQUENT_JOB, raw_freshness, relay_dbt_models
from orchestration.preflight import PREFLIGHT_KEY
from orchestration.syncs import SYNC_SPECS, sync_asset_key

PUBLISHED_KEY = dg.AssetKey(["stakeholders", "published_warehouse"])

# The frequent path runs the models on the time-critical path and only the tests that gate a sync: those on
# sync models and every test tagged `gate` (raw amounts and timestamps readable, identity converged, retired
# keys not live, winback eligibility live, no recent purchaser in winback or cart, no excluded person
# promo-eligible or in a promotional audience). A gate that reads several models names the asset it checks
# (meta dagster.ref): a subsetted dagster-dbt run selects tests through their asset checks only. The daily
# job runs all.
frequent_selection = (
    build_dbt_asset_selection([relay_dbt_models], dbt_select="+tag:frequent", dbt_exclude="resource_type:test")
    | build_dbt_asset_selection([relay_dbt_models], dbt_select="tag:gate path:models/syncs,resource_type:test,tag:frequent")
    | dg.AssetSelection.assets(*[sync_asset_key(s) for s in SYNC_SPECS if s.schedule == "frequent"])
    | dg.AssetSelection.assets(PUBLISHED_KEY, PREFLIGHT_KEY)
    | dg.AssetSelection.checks(raw_freshness)
)

frequent_job = dg.define_asset_job(
    FREQUENT_JOB, selection=frequent_selection,
    description="Models on the time-critical path and the syncs that carry them (cart windows, winback revocation).",
)
daily_job = dg.define_asset_job("daily_full", selection=dg.AssetSelection.all() | dg.AssetSelection.checks(raw_freshness),
                                description="Every model, test and sync.")

frequent_schedule = dg.ScheduleDefinition(
    job=frequent_job, cron_schedule="*/10 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING,
)
daily_schedule = dg.ScheduleDefinition(
    job=daily_job, cron_schedule="0 5 * * *", default_status=dg.DefaultScheduleStatus.RUNNING,
)
