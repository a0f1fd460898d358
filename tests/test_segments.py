"""A segment is one SQL file and one YAML entry, and the guardrails hold whatever its SQL says.

In a copy of the dbt project, two segment models are added the way the README's "Adding a segment" shows, with
the README's commands (`relay build`, `relay sync`, `relay segments`) against the three emulators over HTTP:
  - bought_last_2_days (classification, a declared window): it reaches all three destinations, and when the
    clock passes its window, a scoped build (the frequent path) and a sync take every member out of it
    everywhere, which only the declared window puts in that build's scope;
  - careless_everyone (promotional, selects every customer): no suppressed or held-out person is a member or
    reaches a destination, a warning names the model, and `relay segments` counts who the guardrails removed.
A meta.segment naming an unknown destination, category or setting fails the build naming the file and field,
and a segment model dbt was not told about fails it with the command that registers it.
"""

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from relay import sample_data
from support.dbt import dbt_command
from support.emulators import serve_emulators, served_env
from support.project import DBT, DBT_DIR

pytestmark = pytest.mark.slow

NAME = "WH | Orders | 0-2d | Bought"  # seed 001's operator naming
NEW_SEGMENT = ("bought_last_2_days", """\
select lifecycle.customer_key
from {{ ref('customer_lifecycle') }} as lifecycle
cross join {{ ref('int_as_of') }} as clock
where lifecycle.most_recent_order_timestamp > {{ dbt.dateadd('day', -2, 'clock.as_of') }}
""", f"""\
version: 2
models:
  - name: bought_last_2_days
    description: Ordered in the last two days.
    config:
      meta:
        segment:
          category: classification
          window: [{{anchor: order, after: 2 days}}]
          destinations: {{customerio: "{NAME}", cordial: "{NAME}", talon_one: "{NAME}"}}
""")
CARELESS = ("careless_everyone", "select customer_key from {{ ref('customers') }}\n", """\
version: 2
models:
  - name: careless_everyone
    description: Everyone, including people who must never get an offer.
    config: {meta: {segment: {category: promotional, destinations: {customerio: wh_careless, talon_one: wh_careless}}}}
""")


def add_segment(project: Path, segment: tuple[str, str, str]) -> None:
    name, sql, yaml = segment
    (project / "models" / "segments" / f"{name}.sql").write_text(sql)
    (project / "models" / "segments" / f"{name}.yml").write_text(yaml)


def copy_project(tmp_path: Path) -> Path:
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    return project


def relay(project: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([str(Path(sys.executable).with_name("relay")), *args], capture_output=True, text=True,
                            env={**os.environ, "RELAY_DBT_PROJECT_DIR": str(project), **(env or {})}, timeout=600)
    assert result.returncode == 0, f"relay {' '.join(args)}:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return result


def query(warehouse: Path, sql: str, params=()) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def members(warehouse: Path, segment: str) -> set[str]:
    return {k for (k,) in query(warehouse, "select customer_key from marts.segment_memberships where segment = ?", [segment])}


def held(servers, warehouse: Path, audience: str) -> dict[str, set[str]]:
    """The customer keys each destination holds in `audience`."""
    cio, talon, cordial = (servers[n].state.to_json() for n in ("customerio", "talon_one", "cordial"))
    cio_ids = {cio_id: p.get("id") for cio_id, p in cio["people"].items()}
    keys_by_email = dict(query(warehouse, "select email, customer_key from marts.customers where cordial_email is not null"
                                          " union select email, customer_key from syncs.sync_cordial__list_members"))
    return {
        "customerio": {cio_ids[m] for s in cio["segments"].values() if s["name"] == audience for m in s["members"]},
        "talon_one": {m for a in talon["audiences"].values() if a["name"] == audience for m in a["members"]},
        "cordial": {keys_by_email.get(cordial["contacts"][c]["email"]) for lst in cordial["lists"].values()
                    if lst["name"] == audience for c in lst["members"]},
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The project copy with both segments, built on 400 sample customers and synced to the emulators."""
    tmp = tmp_path_factory.mktemp("segments")
    project, warehouse = copy_project(tmp), tmp / "data" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    add_segment(project, NEW_SEGMENT)
    add_segment(project, CARELESS)
    sample_data.generate(warehouse, customers=400, seed=7)
    with serve_emulators("--record-requests") as servers:
        env = {**served_env(servers), "RELAY_WAREHOUSE": str(warehouse), "RELAY_DATA_DIR": str(tmp / "data"),
               "DBT_PROFILES_DIR": str(project)}
        build = relay(project, "build", env=env)
        relay(project, "sync", "--allow-large-change", env=env)
        yield {"project": project, "warehouse": warehouse, "servers": servers, "env": env, "build": build}


@pytest.mark.e2e  # whole relay commands against a built warehouse: make test-e2e
def test_a_careless_promotional_segment_never_holds_an_excluded_person(built):
    warehouse = built["warehouse"]
    excluded = {k for (k,) in query(warehouse, "select customer_key from marts.customer_segments where is_suppressed or is_holdout")}
    everyone = {k for (k,) in query(warehouse, "select customer_key from marts.customers")}
    assert excluded and members(warehouse, "careless_everyone") == everyone - excluded
    at = held(built["servers"], warehouse, "wh_careless")
    assert at["customerio"] == at["talon_one"] == everyone - excluded and at["cordial"] == set()
    # Still warned about (the model's own relation disagrees with what is synced), and counted.
    assert "assert_promotional_segments_select_no_excluded_people" in built["build"].stdout
    rows = {r["name"]: r for r in json.loads(relay(built["project"], "segments", "--json", env=built["env"]).stdout)}
    careless = rows["careless_everyone"]
    assert (careless["selected"], careless["members"]) == (len(everyone), len(everyone - excluded))
    assert set(careless["syncs"]) == {"customerio", "talon_one"}


@pytest.mark.e2e
def test_a_new_segment_enters_and_exits_at_every_destination(built):
    project, warehouse, servers, env = built["project"], built["warehouse"], built["servers"], built["env"]
    entered = members(warehouse, "bought_last_2_days")
    assert entered, "no buyer in the last two days on sample data"
    assert held(servers, warehouse, NAME) == {"customerio": entered, "cordial": entered & cordial_reachable(warehouse),
                                             "talon_one": entered}
    row = {r["name"]: r for r in json.loads(relay(project, "segments", "--json", env=env).stdout)}["bought_last_2_days"]
    assert row["members"] == len(entered) and row["category"] == "classification"
    assert {d: (s["audience"], s["enter"], s["exit"]) for d, s in row["syncs"].items()} == {
        d: (NAME, 0, 0) for d in ("customerio", "cordial", "talon_one")}

    # The clock passes every member's window: someone else's event, just after the last order's two days.
    clock, = query(warehouse, "select as_of from intermediate.int_as_of")[0]
    last_order = max(t for (t,) in query(warehouse, "select most_recent_order_timestamp from marts.customer_lifecycle "
                                                    "where customer_key in (select customer_key from marts.segment_memberships "
                                                    "where segment = 'bought_last_2_days')"))
    tick = last_order + timedelta(days=2, minutes=1)
    with duckdb.connect(str(warehouse)) as con:
        loaded_through = con.execute("select loaded_through from intermediate.int_scope_watermark").fetchone()[0]
        con.execute("""insert into segment.tracks select * replace ('clock-tick' as id, $t as "timestamp", $r as received_at)
                       from segment.tracks where user_id is null limit 1""",
                    {"t": tick, "r": max(tick, loaded_through + timedelta(minutes=20))})
    relay(project, "build", "--select", "+tag:frequent", env=env)  # the frequent path: a scoped build
    assert query(warehouse, "select is_scoped from intermediate.int_scope_watermark") == [(True,)]
    assert query(warehouse, "select as_of from intermediate.int_as_of")[0][0] >= tick > clock
    assert members(warehouse, "bought_last_2_days") == set()
    relay(project, "sync", "--allow-large-change", env=env)
    assert held(servers, warehouse, NAME) == {"customerio": set(), "cordial": set(), "talon_one": set()}


def cordial_reachable(warehouse: Path) -> set[str]:
    return {k for (k,) in query(warehouse, "select customer_key from marts.customers where cordial_email is not null")}


WRONG = [
    ("{category: promotional, destinations: {braze: x}}",
     'meta.segment.destinations names "braze"; expected one of customerio, cordial, talon_one'),
    ("{category: promo}", 'meta.segment.category is "promo"; expected one of promotional, classification'),
    ("{category: suppression, windw: [{anchor: order, after: 2 days}]}", "meta.segment.windw is not a setting"),
    ("{category: suppression, window: [{anchor: order, after: two days}]}",
     "meta.segment.window.after is \"two days\"; expected '<n> minutes'"),
]


def test_a_wrong_declaration_fails_the_build_naming_the_file(tmp_path, warehouse):
    project = copy_project(tmp_path)
    for meta, message in WRONG:
        add_segment(project, ("oops", "select customer_key from {{ ref('customers') }}\n",
                              f"version: 2\nmodels:\n  - name: oops\n    config: {{meta: {{segment: {meta}}}}}\n"))
        result = dbt(project, warehouse, "build", "--select", "segment_definitions")
        assert result.returncode != 0, meta
        assert f"segment model oops (models/segments/oops.sql): {message}" in result.stdout, result.stdout[-3000:]


def test_a_segment_dbt_was_not_told_about_fails_with_the_command_to_run(tmp_path, warehouse):
    project = copy_project(tmp_path)
    add_segment(project, CARELESS)  # no refresh: the registry still lists the shipped segments only
    result = dbt(project, warehouse, "compile", "--select", "segment_memberships")
    assert result.returncode != 0
    assert "(new: careless_everyone; removed: none). Run `relay segments` or `make manifest`" in result.stdout


def dbt(project: Path, warehouse: Path, *args: str) -> subprocess.CompletedProcess:
    return dbt_command([DBT, *args, "--project-dir", str(project), "--profiles-dir", str(project)],
                       {**os.environ, "RELAY_WAREHOUSE": str(warehouse)}, project)
