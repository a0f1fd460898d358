"""The dbt project as Dagster sees it. Kept free of @dbt_assets so the manifest can be prepared from it."""

import functools
import os

from dagster_dbt import DbtProject

from relay import config, pipeline


@functools.cache
def relay_dbt_project() -> DbtProject:
    config.export_environment()  # RELAY_WAREHOUSE etc. for every dbt subprocess Dagster starts
    project = DbtProject(project_dir=config.DBT_PROJECT_DIR, profiles_dir=config.DBT_PROJECT_DIR)
    if os.getenv("DAGSTER_IS_DEV_CLI"):  # dagster dev: parse what was just edited, and register new segments
        pipeline.prepare_manifest()
    return project
