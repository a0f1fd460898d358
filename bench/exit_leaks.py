"""How many profiles read as eligible for winback at a destination while the model says they are not.

    python bench/exit_leaks.py [--customers 3000] [--steps 4] [--hours 12] [--dir DIR]

Sample data, a dbt build and every shipped sync to in-process emulators, then `steps` appends of `hours` of
activity, each followed by a build and every sync. It prints, as JSON, the profiles Talon.One holds with a
future winback_eligible_until or winback_eligible true, and the people Customer.io holds with winback_eligible
true, among those the model says are not eligible. Not collected by pytest (README lists its duration).
"""

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/support


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--hours", type=int, default=12)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="relay-exit-leaks-"))
    warehouse = work / "warehouse.duckdb"
    os.environ.update(RELAY_WAREHOUSE=str(warehouse), RELAY_DATA_DIR=str(work), DAGSTER_HOME=str(work / "dagster"),
                      RELAY_DESTINATIONS="emulator")

    import duckdb

    from support.dbt import run_dbt
    from support.emulators import serve_emulators, served_env
    from support.project import DBT_DIR
    from relay import pipeline, sample_data
    from sinks.declarations import load_specs

    specs = load_specs(DBT_DIR / "target" / "manifest.json")

    def build_and_sync() -> None:
        run_dbt(warehouse, "build", "--exclude", "resource_type:unit_test")
        for spec in specs:
            result = pipeline.run_sync(spec, allow_large_change=True)
            assert result.status == "succeeded", (spec.name, result.message)

    with serve_emulators() as servers:
        os.environ.update(served_env(servers))
        sample_data.generate(warehouse, customers=args.customers, seed=42)
        build_and_sync()
        for _ in range(args.steps):
            sample_data.append(warehouse, hours=args.hours)
            build_and_sync()
        with duckdb.connect(str(warehouse), read_only=True) as con:
            as_of = con.execute("select as_of from intermediate.int_as_of").fetchone()[0].replace(tzinfo=timezone.utc)
            # With the default (empty) integrationId prefix this is also each person's Customer.io id.
            eligible = {k for (k,) in con.execute(
                "select integration_id from syncs.sync_talon_one__profiles where winback_eligible").fetchall()}
        talon = servers["talon_one"].state.to_json()["profiles"]
        people = servers["customerio"].state.to_json()["people"]

    def live(until) -> bool:
        return until not in (None, "") and datetime.fromisoformat(until.replace("Z", "+00:00")) > as_of

    others = {i: p["attributes"] for i, p in talon.items() if i not in eligible}
    print(json.dumps({
        "as_of": str(as_of), "talon_one_profiles": len(talon), "eligible_in_model": len(eligible),
        "talon_one_future_until_not_eligible": sum(live(a.get("winback_eligible_until")) for a in others.values()),
        "talon_one_flag_true_not_eligible": sum(a.get("winback_eligible") is True for a in others.values()),
        "customerio_flag_true_not_eligible": sum(p["attributes"].get("winback_eligible") is True
                                                 for p in people.values() if p.get("id") not in eligible),
    }))


if __name__ == "__main__":
    main()
