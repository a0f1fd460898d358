"""Two Cordial syncs (people attributes and an audience's members) small enough for tests that run syncs
in processes of their own (test_concurrency, test_emulator_cli), their model rows, and how to write them."""

from pathlib import Path

from sinks.declarations import SyncSpec

from .warehouse import write_table

AUDIENCE = "wh | vip | gold"

PEOPLE = SyncSpec(name="sync_test__people", relation="syncs.people", destination="cordial", object="attributes",
                  primary_key=("customer_key",), identifier="email", on_exit="clear", schedule="frequent",
                  columns={"customer_key": "varchar", "email": "varchar", "orders_count": "bigint", "vip_tier": "varchar"})
MEMBERS = SyncSpec(name="sync_test__members", relation="syncs.members", destination="cordial", object="membership",
                   primary_key=("customer_key", "audience"), identifier="email", on_exit="remove", schedule="frequent",
                   columns={"customer_key": "varchar", "email": "varchar", "audience": "varchar"})


def people(lo: int, hi: int) -> list[dict]:
    return [{"customer_key": f"c{i:06d}", "email": f"person{i}@example.com", "orders_count": i % 7,
             "vip_tier": ("none", "silver", "gold")[i % 3]} for i in range(lo, hi)]


def members(lo: int, hi: int) -> list[dict]:
    return [{"customer_key": f"c{i:06d}", "email": f"person{i}@example.com", "audience": AUDIENCE} for i in range(lo, hi)]


def write(warehouse: Path, spec: SyncSpec, rows: list[dict]) -> None:
    write_table(warehouse, spec.relation, spec.columns, rows)
