"""A segment's time boundary is declared once (dbt_project/macros/time_boundaries.sql): a window added
there and nowhere else is what a segment model reads, and a scoped run puts the people whose boundary the
clock passed in its scope (int_scope_keys), so their rows do not stay stale until the daily rebuild.

The same scoped run is made twice from one warehouse: with a new window declared that passes for one
person between the two clocks, and without it. Only the first has that person in scope. Once for a window
after an order and once for a window after an event (the views ageing out of an intent window).
"""

import os
import shutil
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from relay import sample_data
from support.dbt import dbt_command, run_dbt
from support.project import DBT, DBT_DIR

DECLARATION = "macros/time_boundaries.sql"
SEGMENT_MODEL = """
select
    lifecycle.customer_key,
    {{ time_boundary('test_window_end', 'lifecycle.MOMENT') }} <= as_of.as_of as has_passed
from {{ ref('customer_lifecycle') }} as lifecycle
cross join {{ ref('int_as_of') }} as as_of
"""
# anchor -> the lifecycle column holding a person's latest moment of that anchor
ANCHORS = {"order": "most_recent_order_timestamp", "event": "last_seen_at"}


def project_declaring(tmp_path: Path, minutes: int, anchor: str = "order", moment: str = ANCHORS["order"]) -> Path:
    """A copy of the dbt project with one more window, in the declaration only, and a model reading it."""
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    declaration = project / DECLARATION
    text = declaration.read_text()
    entry = f"'test_window_end': {{'anchor': '{anchor}', 'unit': 'minute', 'amount': {minutes}}},"
    assert text.count("return({") == 1
    declaration.write_text(text.replace("return({", "return({\n        " + entry))
    (project / "models" / "test_window.sql").write_text(SEGMENT_MODEL.replace("MOMENT", moment))
    return project


def run_dbt_in(project: Path, warehouse: Path, *args: str) -> None:
    work = warehouse.parent / "dbt_copy"
    command = [DBT, *args, "--project-dir", str(project), "--profiles-dir", str(project),
               "--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    result = dbt_command(command, {**os.environ, "RELAY_WAREHOUSE": str(warehouse)}, project)
    assert result.returncode == 0, f"dbt {' '.join(args)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"


def row(warehouse: Path, sql: str, params=()) -> tuple:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, list(params)).fetchone()


def scalar(warehouse: Path, sql: str, params=()):
    return row(warehouse, sql, params)[0]


def in_scope(warehouse: Path, customer_key: str) -> bool:
    assert scalar(warehouse, "select is_scoped from intermediate.int_scope_watermark")
    return scalar(warehouse, "select count(*) from intermediate.int_scope_keys where customer_key = ?", [customer_key]) == 1


@pytest.mark.parametrize("anchor", ANCHORS)
def test_a_window_declared_once_moves_both_the_segment_and_the_scope(warehouse, tmp_path, anchor):
    sample_data.generate(warehouse, customers=150, seed=21)
    run_dbt(warehouse, "run")
    clock = scalar(warehouse, "select as_of from intermediate.int_as_of")
    loaded_through = scalar(warehouse, "select loaded_through from intermediate.int_scope_watermark")
    # A person whose last order (or event) is days old: the new window after it ends a minute after this clock.
    customer_key, account, last_moment = row(warehouse, f"""
        select customers.customer_key, cast(customers.shopify_customer_id as varchar), lifecycle.{ANCHORS[anchor]}
        from marts.customer_lifecycle as lifecycle
        inner join marts.customers as customers using (customer_key)
        where lifecycle.{ANCHORS[anchor]} < ? - interval 2 day and customers.shopify_customer_id is not null
        order by customers.customer_key limit 1""", [clock])
    minutes = int((clock - last_moment).total_seconds() // 60) + 1
    # The clock moves ten minutes: another person's device sends an event.
    with duckdb.connect(str(warehouse)) as con:
        con.execute("""insert into segment.tracks select * replace ('clock-tick' as id, $t as "timestamp", $r as received_at)
                       from segment.tracks where user_id is not null and user_id is distinct from $account limit 1""",
                    {"t": clock + timedelta(minutes=10), "r": loaded_through + timedelta(minutes=20), "account": account})
        con.execute("checkpoint")
    without = tmp_path / "without.duckdb"
    shutil.copyfile(warehouse, without)

    run_dbt_in(project_declaring(tmp_path, minutes, anchor, ANCHORS[anchor]), warehouse, "run", "--select", "+int_scope_keys", "test_window")
    assert scalar(warehouse, "select as_of from intermediate.int_as_of") == clock + timedelta(minutes=10)
    assert scalar(warehouse, "select has_passed from main.test_window where customer_key = ?", [customer_key])
    assert in_scope(warehouse, customer_key)

    # The same scoped run without the window: nothing else puts that person in scope.
    shutil.copyfile(without, warehouse)
    run_dbt(warehouse, "run", "--select", "+int_scope_keys")
    assert not in_scope(warehouse, customer_key)


def test_a_window_after_an_anchor_the_scope_does_not_know_fails_the_build(warehouse, tmp_path):
    """A window int_scope_keys cannot put in scope would leave rows stale until the daily rebuild: it fails."""
    project = project_declaring(tmp_path, 60, anchor="refund")
    work = warehouse.parent / "dbt_copy"
    result = dbt_command([DBT, "compile", "--select", "int_scope_keys", "--project-dir", str(project),
                          "--profiles-dir", str(project), "--target-path", str(work / "target"),
                          "--log-path", str(work / "logs")], {**os.environ, "RELAY_WAREHOUSE": str(warehouse)}, project)
    assert result.returncode != 0
    assert "int_scope_keys has no anchor 'refund'" in result.stdout
