"""The sync engine's pure pieces, without a warehouse or a destination: milliseconds each."""

import json

import pytest

from sinks.declarations import SyncSpec
from sinks.engine.changes import key_sql, to_change
from sinks.engine.plan import check_blast_radius
from sinks.engine.result import RunResult, SyncRefused
from sinks.engine.settings import Guard
from sinks.engine.state import step_runs

SPEC = SyncSpec(name="s", relation="syncs.people", destination="customerio", object="attributes",
                primary_key=("customer_key",), identifier="email", on_exit="clear", schedule="frequent",
                columns={"customer_key": "varchar", "email": "varchar", "tier": "varchar", "orders": "bigint"},
                column_meta={"tier": {"exit_value": "none"}})


def step(kind, identifier="a@x.com", prev_identifier="a@x.com", new=None, old=None, leaving=False):
    return ("k1", kind, identifier, prev_identifier, json.dumps(new) if new is not None else None,
            json.dumps(old) if old is not None else None, "h" if new is not None else None, leaving)


@pytest.mark.parametrize("rns, firsts, lasts", [
    ([5], [5], [5]),
    ([3, 1, 2], [1], [3]),
    ([1, 2, 4, 7, 8, 9], [1, 4, 7], [2, 4, 9]),
])
def test_step_runs_are_consecutive_runs_with_their_range(rns, firsts, lasts):
    assert step_runs(rns) == {"firsts": firsts, "lasts": lasts, "lo": min(rns), "hi": max(rns)}


def test_a_compound_key_is_a_json_array():
    assert key_sql(SPEC) == 'cast(m."customer_key" as varchar)'
    compound = SyncSpec(**{**SPEC.__dict__, "primary_key": ("customer_key", "audience")})
    assert key_sql(compound, "t") == 'cast(to_json([cast(t."customer_key" as varchar), cast(t."audience" as varchar)]) as varchar)'


def test_an_add_sends_every_attribute_that_is_set():
    change = to_change(SPEC, step("add", new={"tier": "gold", "orders": None}), rn=4)
    assert (change.kind, change.identifier, change.fields, change.rn) == ("add", "a@x.com", ["tier"], 4)


def test_a_change_sends_only_what_changed_unless_reasserted_or_moved():
    old, new = {"tier": "gold", "orders": 1}, {"tier": "gold", "orders": 2}
    assert to_change(SPEC, step("change", new=new, old=old)).fields == ["orders"]
    assert to_change(SPEC, step("change", new=new, old=old), resend=frozenset({"k1"})).fields == ["tier", "orders"]
    assert to_change(SPEC, step("change", new=new, old=old), full_resync=True).fields == ["tier", "orders"]
    moved = to_change(SPEC, step("change", identifier="b@x.com", new=new, old=old))
    assert (moved.identifier, moved.fields) == ("b@x.com", ["tier", "orders"])


def test_a_remove_and_a_leaving_step_address_the_old_identifier_with_the_exit_values():
    removed = to_change(SPEC, step("remove", identifier=None, old={"tier": "gold"}))
    assert (removed.kind, removed.identifier, removed.row, removed.internal) == ("remove", "a@x.com", {"tier": "none"}, False)
    leaving = to_change(SPEC, step("change", identifier="b@x.com", new={"tier": "gold"}, old={"tier": "gold"}, leaving=True))
    assert (leaving.kind, leaving.identifier, leaving.internal) == ("remove", "a@x.com", True)


def result(**counts) -> RunResult:
    return RunResult(run_id="r", sync_name="s", destination="cordial", mode="apply", **counts)


def test_a_run_with_refused_rows_is_partial_and_one_that_delivered_nothing_failed():
    ok = result(planned_add=3, acked_add=3)
    ok.conclude(300)
    assert (ok.status, ok.unsent, ok.message) == ("succeeded", 0, "")
    partial = result(planned_add=3, acked_add=2, rejected=1)
    partial.conclude(300)
    assert partial.status == "partial" and "refused by cordial" in partial.message
    failed = result(planned_add=3)
    failed.conclude(300)
    assert (failed.status, failed.unsent) == ("failed", 3) and "resent next run" in failed.message


def test_the_blast_radius_guard_refuses_a_large_share_unless_approved():
    guard = Guard(max_change_share=0.3, min_rows=10)
    big = result(state_rows=100, planned_change=20, planned_remove=20)
    with pytest.raises(SyncRefused, match="40 of 100"):
        check_blast_radius(guard, big, resent_keys=0, full_resync=False)
    check_blast_radius(guard, big, resent_keys=15, full_resync=False)  # re-assertions change nothing
    check_blast_radius(Guard(0.3, 10, allow_large_change=True), big, resent_keys=0, full_resync=False)
    check_blast_radius(guard, result(state_rows=20, planned_remove=9), resent_keys=0, full_resync=False)  # < min_rows
