"""The invariants checked after every crash (test_crash_recovery, bench/soak.py): sync_state never claims a
value the destination does not hold (`overclaimed`), and how the destination differs from what it should
hold (`mismatched`)."""

import json
from pathlib import Path

from .harnesses import Harness
from .warehouse import query


def state_rows(h: Harness, warehouse: Path) -> list[dict]:
    """The model rows sync_state says the destination acknowledged (its stored payloads)."""
    return [json.loads(p) for (p,) in query(
        warehouse, "select payload from relay.sync_state where sync_name = ?", [h.people.name])]


def expected_of(h: Harness, row: dict) -> dict:
    """What the destination holds for one model row. A vip_tier set to null (the attribute the soak clears)
    reads as the destination's `unset` (Talon.One keeps a cleared string as "")."""
    value = h.expected([row])[h.id_of(row)]
    if row.get("vip_tier", "") is None and h.unset is not None:
        value["vip_tier"] = h.unset
    return value


def overclaimed(h: Harness, warehouse: Path, held: dict | None = None) -> list[str]:
    """Identifiers whose sync_state row claims a value the destination does not hold. State may lag the
    destination after a crash (acknowledged, not yet written), never lead it: this must always be empty."""
    held = h.held() if held is None else held
    return [h.id_of(row) for row in state_rows(h, warehouse) if held.get(h.id_of(row)) != expected_of(h, row)]


def mismatched(expected: dict[str, dict], held: dict[str, dict]) -> dict[str, list[str]]:
    """How the destination differs from what it should hold: missing, wrong and unexpected records."""
    return {
        "missing": sorted(k for k in expected if k not in held),
        "wrong": sorted(k for k in expected if k in held and held[k] != expected[k]),
        "unexpected": sorted(k for k in held if k not in expected),
    }
