"""Sync models as wide as the shipped ones, at any row count: a small real build's rows of each attribute
sync model, copied with fresh keys (the first copy keeps its own, so its identity merges still apply).

    .venv/bin/python bench/real_width.py --template DIR --rows 1000000 --out WAREHOUSE [--sync NAME]

The benchmarks measure memory and throughput on these, not on a narrow stand-in: a row of
sync_customerio__people carries every column the model declares, with the values a build gives them.
Not collected by pytest (it lives outside tests/).
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
RELAY = str(Path(sys.executable).with_name("relay"))
TEMPLATE_CUSTOMERS = 20_000
# The attribute sync of each destination: the models whose rows carry a person's whole profile.
PEOPLE_SYNCS = {"customerio": "sync_customerio__people", "cordial": "sync_cordial__contacts",
                "talon_one": "sync_talon_one__profiles"}


def build_template(work: Path, customers: int = TEMPLATE_CUSTOMERS, env: dict | None = None) -> Path:
    """Sample data and a full dbt build in `work` (kept: a second call reuses it); the warehouse's path."""
    warehouse = work / "warehouse.duckdb"
    if (work / "built").exists():
        return warehouse
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **(env or {}), "RELAY_DATA_DIR": str(work), "RELAY_WAREHOUSE": str(warehouse),
           "DBT_PROFILES_DIR": str(ROOT / "dbt_project")}
    for command in ([RELAY, "sample-data", "--customers", str(customers)], [RELAY, "build"]):
        subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    (work / "built").touch()
    return warehouse


def spec(destination: str):
    """The shipped sync declaration of the destination's people model (from dbt's manifest)."""
    from sinks.declarations import load_specs

    specs = {s.name: s for s in load_specs(ROOT / "dbt_project" / "target" / "manifest.json")}
    return specs[PEOPLE_SYNCS[destination]]


def _fresh(column: str, data_type: str) -> str:
    """The column's value in copy `i`: an email keeps its domain (a destination validates it)."""
    q = '"' + column.replace('"', '""') + '"'
    if data_type.lower() in ("bigint", "integer", "hugeint"):
        return f"case when i = 0 then {q} else {q} + i * 1000000000000 end"
    return (f"case when i = 0 or {q} is null then {q} when contains({q}, '@') "
            f"then regexp_replace({q}, '@', '+r' || i || '@') else {q} || '-r' || i end")


def make_model(template: Path, warehouse: Path, destination: str, rows: int):
    """`rows` rows of the destination's people model in `warehouse` (replacing it), and the spec that syncs
    them there; its identity merges relation is copied as it is."""
    s = spec(destination)
    # Keys and identifiers are fresh in every copy; so is an email, which a destination may hold unique.
    keys = dict.fromkeys([*s.primary_key, s.identifier, *(c for c in s.columns if c == "email")])
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(f"attach '{template}' as template (read_only)")
        types = dict(con.execute(
            "select column_name, data_type from duckdb_columns() where database_name = 'template' and "
            "schema_name || '.' || table_name = ?", [s.relation]).fetchall())
        base = con.execute(f"select count(*) from template.{s.relation}").fetchone()[0]
        copies = -(-rows // base)
        rewritten = ", ".join(f'{_fresh(c, types[c])} as "{c}"' for c in keys)
        schema = s.relation.split(".")[0]
        con.execute(f"create schema if not exists {schema}")
        con.execute(f"create or replace table {s.relation} as select m.* replace ({rewritten}) "
                    f"from range({copies}) r(i), template.{s.relation} m limit {rows}")
        if s.merges:
            con.execute(f"create schema if not exists {s.merges.split('.')[0]}")
            con.execute(f"create or replace table {s.merges} as select * from template.{s.merges}")
        con.execute("detach template")
    finally:
        con.close()
    return s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, required=True, help="where the small build lives (made if absent)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True, help="the warehouse to write the models to")
    parser.add_argument("--destination", choices=sorted(PEOPLE_SYNCS), action="append")
    args = parser.parse_args()
    template = build_template(args.template)
    for destination in args.destination or PEOPLE_SYNCS:
        s = make_model(template, args.out, destination, args.rows)
        print(f"{s.relation}: {args.rows:,} rows, {len(s.columns)} columns")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
