"""The dbt project as Dagster sees it. Kept free of @dbt_assets so the manifest can be prepared from it."""

import functools

from dagster_dbt import DbtProject

from relay import config


@functools.cache
def relay_dbt_project() -> DbtProject:
    config.export_environment()  # RELAY_WAREHOUSE etc. for every dbt subprocess Dagster starts
    project = DbtProject(project_dir=config.DBT_PROJECT_DIR, profiles_dir=config.DBT_PROJECT_DIR)
    project.prepare_if_dev()
    return project
