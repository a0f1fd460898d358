"""Views are left as they stand when nothing about them changed (dbt_project/macros/materializations/view.sql),
and replaced when their SQL changed or their inputs now bind to other types. A project of two models, with the
project's own materialization, in a warehouse of its own."""

import json
import os
import shutil
from pathlib import Path

import duckdb

from support.dbt import dbt_command
from support.project import DBT, DBT_DIR


def _project(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "macros").mkdir()
    shutil.copy(DBT_DIR / "macros" / "materializations" / "view.sql", root / "macros" / "view.sql")
    (root / "dbt_project.yml").write_text("name: views\nversion: '1.0'\nprofile: views\nconfig-version: 2\n")
    (root / "profiles.yml").write_text(
        f"views:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {root / 'w.duckdb'}\n      threads: 1\n")
    (root / "models" / "amounts.sql").write_text("{{ config(materialized='table') }}\nselect 1 as amount")
    (root / "models" / "amounts_view.sql").write_text("select amount from {{ ref('amounts') }}")
    return root


def _run(root: Path, *args: str) -> dict[str, str]:
    """dbt run; each model's message (`unchanged` for a view left as it stood)."""
    command = [DBT, "run", "--project-dir", str(root), "--profiles-dir", str(root), *args]
    result = dbt_command(command, dict(os.environ), root)
    assert result.returncode == 0, result.stdout[-3000:]
    results = json.loads((root / "target" / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[-1]: r["message"] for r in results}


def _read(root: Path) -> list[tuple]:
    with duckdb.connect(str(root / "w.duckdb"), read_only=True) as con:
        return con.execute("select amount, typeof(amount) from amounts_view").fetchall()


def test_a_view_is_replaced_only_when_its_sql_or_its_inputs_types_changed(tmp_path):
    root = _project(tmp_path / "project")
    assert _run(root)["amounts_view"] != "unchanged"
    assert _run(root)["amounts_view"] == "unchanged"
    assert _read(root) == [(1, "INTEGER")]

    # The table beneath changes type, the view's SQL does not: DuckDB would refuse to read the old view.
    (root / "models" / "amounts.sql").write_text("{{ config(materialized='table') }}\nselect 'one' as amount")
    _run(root, "--select", "amounts")
    assert _run(root, "--select", "amounts_view")["amounts_view"] != "unchanged"
    assert _read(root) == [("one", "VARCHAR")]

    (root / "models" / "amounts_view.sql").write_text("select amount || '!' as amount from {{ ref('amounts') }}")
    assert _run(root)["amounts_view"] != "unchanged"
    assert _read(root) == [("one!", "VARCHAR")]
    assert _run(root, "--full-refresh")["amounts_view"] != "unchanged"
