"""The emulators' saved state: a snapshot plus a journal of what changed since. A save must cost what changed,
a restart must see every change a save wrote, and a crash mid-save must lose at most that save."""

import json

import pytest

from emulators.cordial_state import CordialState
from emulators.customerio_state import CustomerIOState
from emulators.persistence import Journal, read_saved
from emulators.talon_one_state import TalonOneState
from emulators.tracked import Tracked, TrackedList, TrackedSet


def _save(journal: Journal, state) -> str | None:
    line = journal.changes(state.parts())
    if line is not None:
        journal.append(line)
    return line


def _fresh(tmp_path, state) -> Journal:
    journal = Journal(tmp_path / "state.json")
    journal.write_snapshot(journal.snapshot(state.parts()))
    return journal


def _person(state: CustomerIOState, user_id: str, **attributes) -> str:
    cio_id = state.create()
    state.set_identifier(cio_id, "id", user_id)
    state.people[cio_id]["attributes"].update(attributes)
    return cio_id


def test_changes_replay_in_order_over_the_snapshot(tmp_path):
    state = CustomerIOState()
    journal = _fresh(tmp_path, state)
    first, second = _person(state, "u1", plan="pro"), _person(state, "u2")
    state.segments[1] = {"id": 1, "name": "vip", "members": TrackedSet({first, second})}
    state.event_ids.add("01J0")
    state.event_log.append({"person": "u2", "name": "viewed", "id": "01J0", "timestamp": 1, "attributes": {}})
    state.events["viewed"] += 1
    _save(journal, state)

    state.people[first]["attributes"]["plan"] = "free"  # changed in place, through the entry handed out
    state.delete(second)  # gone from people and from the segment
    state.event_log[0] = {**state.event_log[0], "person": "u1"}  # an edit, as a merge makes it
    state.merges.append({"primary": first, "secondary": second})
    _save(journal, state)

    saved, generation, _ = read_saved(journal.path)
    assert saved == state.to_json()
    assert saved["people"][first]["attributes"] == {"plan": "free"} and second not in saved["people"]
    assert saved["segments"]["1"]["members"] == [first]
    restored = CustomerIOState()
    restored.load(saved)
    assert restored.to_json() == state.to_json()
    assert restored.find("id", "u1") == first  # indexes rebuilt from what was replayed


@pytest.mark.parametrize("make", [lambda: CordialState(("customer_key",)), TalonOneState])
def test_every_destination_replays_its_changes(tmp_path, make):
    state = make()
    journal = _fresh(tmp_path, state)
    if isinstance(state, CordialState):
        state.lists[1] = {"id": 1, "name": "vip", "enhanced": False, "members": Tracked()}
        state.put("c1", {"email": "a@example.com", "subscribeStatus": "subscribed", "attributes": {}})
        state.lists[1]["members"]["c1"] = "2026-01-01"
        state.jobs["j1"] = job = {"status": "queued"}
        state.activities.append({"cID": "c1", "a": "viewed"})
        _save(journal, state)
        job["status"] = "done"  # an import job changes through the reference its task holds
        state.delete("c1")
    else:
        state.audiences[1] = {"id": 1, "name": "vip", "members": TrackedSet()}
        state.update_profile("p1", {"Tier": "gold"}, {"adds": [1], "deletes": []})
        state.add_event({"type": "viewed", "profileId": "p1"})
        _save(journal, state)
        state.update_profile("p1", {"Tier": "silver"}, {"adds": [], "deletes": [1]})
    _save(journal, state)
    assert read_saved(journal.path)[0] == state.to_json()


def test_a_save_costs_what_changed_not_the_whole_state(tmp_path):
    state = CustomerIOState()
    for i in range(20_000):
        _person(state, f"user-{i}", first_name="x" * 40)
    state.segments[1] = {"id": 1, "name": "all", "members": TrackedSet(state.people)}
    journal = _fresh(tmp_path, state)
    snapshot_bytes = journal.path.stat().st_size

    who = state.find("id", "user-7")
    state.people[who]["attributes"]["plan"] = "pro"
    state.segments[1]["members"].discard(who)
    line = _save(journal, state)
    assert line is not None and len(line) < 500, line  # one person and one member, not twenty thousand
    assert _save(journal, state) is None  # nothing changed since: nothing written
    assert journal.path.stat().st_size == snapshot_bytes
    assert read_saved(journal.path)[0] == state.to_json()


def test_a_torn_last_line_is_dropped_and_later_saves_still_count(tmp_path):
    state = CustomerIOState()
    journal = _fresh(tmp_path, state)
    _person(state, "u1")
    _save(journal, state)
    kept = state.to_json()
    with open(journal.journal_path, "ab") as f:
        f.write(b'{"generation":1,"changes":{"people":{"put":{"0000')  # a crash mid-write

    reopened = Journal(journal.path)
    restored = CustomerIOState()
    restored.load(reopened.load())
    assert restored.to_json() == kept
    reopened.saved(restored.parts())
    _person(restored, "u2")
    _save(reopened, restored)
    assert read_saved(journal.path)[0] == restored.to_json()  # appended after the last whole line


def test_a_snapshot_folds_the_journal_and_a_crash_before_emptying_it_changes_nothing(tmp_path):
    state = CustomerIOState()
    journal = _fresh(tmp_path, state)
    _person(state, "u1")
    state.event_log.append({"person": "u1", "name": "viewed", "id": "e1", "timestamp": 1, "attributes": {}})
    _save(journal, state)
    old_lines = journal.journal_path.read_bytes()

    journal.write_snapshot(journal.snapshot(state.parts()))
    assert journal.journal_path.read_bytes() == b""
    assert read_saved(journal.path)[0] == state.to_json()
    journal.journal_path.write_bytes(old_lines)  # as if the process died between the two writes
    assert read_saved(journal.path)[0] == state.to_json()  # the event is not appended twice


def test_the_journal_asks_for_a_snapshot_once_it_outweighs_the_last(tmp_path, monkeypatch):
    monkeypatch.setattr("emulators.persistence.COMPACT_MIN_BYTES", 0)
    state = CustomerIOState()
    journal = _fresh(tmp_path, state)
    assert not journal.wants_snapshot()
    for i in range(50):
        _person(state, f"user-{i}")
    _save(journal, state)
    assert journal.wants_snapshot()


def test_a_reset_state_is_saved_empty(tmp_path):
    state = CustomerIOState()
    journal = _fresh(tmp_path, state)
    _person(state, "u1")
    _save(journal, state)
    state.clear()
    _save(journal, state)
    assert read_saved(journal.path)[0] == CustomerIOState().to_json()


def test_a_tracked_list_refuses_what_the_journal_could_not_replay():
    log = TrackedList([1, 2, 3])
    for change in (lambda: log.pop(), lambda: log.insert(0, 0), lambda: log.sort(), lambda: log.__delitem__(0)):
        with pytest.raises(TypeError):
            change()
    assert log == [1, 2, 3]


def test_a_legacy_snapshot_without_a_journal_still_loads(tmp_path):
    state = CustomerIOState()
    _person(state, "u1")
    path = tmp_path / "customerio.json"
    legacy = {k: v for k, v in state.to_json().items() if k not in ("merges", "event_log")}  # before those parts
    path.write_text(json.dumps(legacy))  # the format before journals
    journal = Journal(path)
    restored = CustomerIOState()
    restored.load(journal.load())
    journal.saved(restored.parts())
    _person(restored, "u2")
    restored.merges.append({"primary": "a", "secondary": "b"})
    _save(journal, restored)
    again = CustomerIOState()
    again.load(read_saved(path)[0])
    assert again.to_json() == restored.to_json()


def test_a_segment_saves_its_members_by_what_changed_and_its_own_fields_whole(tmp_path):
    state = TalonOneState()
    journal = _fresh(tmp_path, state)
    state.audiences[1] = {"id": 1, "name": "vip", "members": TrackedSet(f"p{i}" for i in range(5000))}
    assert len(_save(journal, state)) > 5000 * 4  # new: written whole

    state.change_memberships([{"audienceId": 1, "action": "add", "profileIntegrationId": "new"},
                              {"audienceId": 1, "action": "delete", "profileIntegrationId": "p7"}])
    assert len(_save(journal, state)) < 500
    state.audiences[1] = {**{k: v for k, v in dict.items(state.audiences[1]) if k != "name"},
                          "description": "renamed away"}  # a new entry around the same members
    state.audiences[1]["members"].add("later")
    _save(journal, state)
    state.audiences[1]["members"] = TrackedSet({"only"})  # emptied, as DELETE .../memberships does, then one
    _save(journal, state)
    state.audiences[1]["members"].add("second")
    _save(journal, state)
    assert read_saved(journal.path)[0] == state.to_json()


def test_members_changed_over_several_saves_replay_as_members(tmp_path):
    state = CustomerIOState()
    journal = _fresh(tmp_path, state)
    state.segments[1] = {"id": 1, "name": "vip", "type": "manual", "members": TrackedSet()}
    _save(journal, state)
    for member in ("a", "b", "c"):  # each request hands out the segment, then changes its members
        state.segments.get(1)["members"].add(member)
        _save(journal, state)
    assert read_saved(journal.path)[0] == state.to_json()


def test_after_a_snapshot_a_list_saves_only_the_member_that_changed(tmp_path):
    state = CordialState(("customer_key",))
    state.lists[1] = {"id": 1, "name": "vip", "enhanced": False,
                      "members": Tracked({f"c{i}": "2026-01-01" for i in range(5000)})}
    journal = _fresh(tmp_path, state)
    state.lists[1]["members"]["new"] = "2026-01-02"
    line = _save(journal, state)
    assert line is not None and len(line) < 500, line[:300]
    assert read_saved(journal.path)[0] == state.to_json()
