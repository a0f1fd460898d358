"""What an emulator's save costs, whole state against the journal of changes (emulators/persistence.py).

    python bench/emulator_saves.py [--people 1000000] [--changed 5000] [--groups 12]

Builds a Customer.io state of `people` people (the shipped people sync's attribute width) in `groups` segments
of up to a sixth of them, then changes `changed` people and every segment's members once, as an hour's
frequent run does. Prints, as JSON, the seconds and bytes of encoding the whole state (a snapshot, what every
save cost before the journal) and of the journal line for that change. Not collected by pytest.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulators.customerio_state import CustomerIOState  # noqa: E402
from emulators.persistence import Journal  # noqa: E402
from emulators.tracked import TrackedSet  # noqa: E402

ATTRIBUTES = {"email": "someone@example.com", "created_at": 1793516373, "orders_count": 2, "lifetime_value": 51.24,
              "refunded_orders_count": 0, "promo_redemptions_count": 1, "email_marketing_consent": "subscribed",
              "sms_marketing_consent": "not_subscribed", "unsubscribed": False, "lifecycle_stage": "active",
              "vip_tier": "none", "incentive_tier": "none", "winback_eligible": False, "discount_abuser": False,
              "suppressed": False, "holdout": False, "last_order_at": 1793519124, "first_order_at": 1793419124}


def state_of(people: int, groups: int) -> CustomerIOState:
    state = CustomerIOState()
    for i in range(people):
        cio_id = state.create()
        state.set_identifier(cio_id, "id", f"{i:032x}")
        state.people[cio_id]["attributes"].update(ATTRIBUTES)
    ids = list(state.people)
    for g in range(1, groups + 1):
        state.segments[g] = {"id": g, "name": f"wh_segment_{g}", "type": "manual", "members": TrackedSet(ids[g::6])}
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=5_000)
    parser.add_argument("--groups", type=int, default=12)
    args = parser.parse_args()
    state = state_of(args.people, args.groups)
    with tempfile.TemporaryDirectory(prefix="relay-emulator-saves-") as work:
        journal = Journal(Path(work) / "customerio.json")
        started = time.monotonic()
        snapshot = journal.snapshot(state.parts())
        whole_s = time.monotonic() - started
        journal.write_snapshot(snapshot)

        for cio_id in list(state.people)[: args.changed]:
            state.people[cio_id]["attributes"]["last_seen_at"] = 1793520000
        for segment in state.segments.values():  # every segment's members change
            segment["members"].discard(next(iter(segment["members"])))
        started = time.monotonic()
        line = journal.changes(state.parts())
        change_s = time.monotonic() - started
    print(json.dumps({"people": args.people, "changed": args.changed, "groups": args.groups,
                      "whole_state": {"encode_s": round(whole_s, 2), "mb": round(len(snapshot) / 1e6, 1)},
                      "journal_line": {"encode_s": round(change_s, 2), "mb": round(len(line or "") / 1e6, 1)}}))


if __name__ == "__main__":
    main()
