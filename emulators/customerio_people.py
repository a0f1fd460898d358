"""How Customer.io applies person operations to the workspace: identify (with the vendor's matching and
identifier rules), merge, delete, suppress, unsuppress and events. What only the stored state reveals is not an
error answer but an attribute update failure, as the vendor logs it in the activity log."""

import time
from typing import Any

from .api import ApiError
from .customerio_state import CustomerIOState, cleared, identifier_key
from .customerio_validation import MAX_ATTRIBUTES, ULID
from .recording import Stats


class People:
    def __init__(self, state: CustomerIOState, stats: Stats, allow_email_update_by_id: bool):
        self.state = state
        self.stats = stats
        self.allow_email_update_by_id = allow_email_update_by_id
        # People created by the request being applied: a merge into one of them races its creation at the
        # vendor ("the primary profile might not exist when we process your merge request"), so it does nothing.
        self.fresh: set[str] = set()

    def fail(self, kind: str, value: str, reason: str) -> None:
        """What the vendor shows as an attribute update failure in the activity log (the request got 2xx)."""
        self.state.failures.append({"identifier": identifier_key(kind, value), "reason": reason})
        self.stats.flags["attribute_update_failures"] += 1

    def identify(
        self,
        kind: str,
        value: str,
        attributes: dict[str, Any],
        timestamp: int | None = None,
        update_only: bool = False,
    ) -> None:
        s = self.state
        if s.is_suppressed(kind, value):
            return self.fail(kind, value, "identifier is suppressed")
        body_ids = {k: attributes.pop(k) for k in ("id", "email", "phone") if k in attributes}
        body_ids = {k: v for k, v in body_ids.items() if isinstance(v, str) and v}
        cio_id = s.find(kind, value)
        found_by_path = cio_id is not None
        if cio_id is None:
            # An unknown path identifier with a known body identifier updates that person (vendor rule).
            cio_id = next((c for k, v in body_ids.items() if (c := s.find(k, v))), None)
        if cio_id is None and (update_only or kind == "cio_id"):
            return self.fail(kind, value, "no person matches and nobody is created")
        # A new person is only stored once every check has passed.
        person = s.people[cio_id] if cio_id is not None else {"attributes": {}}
        if timestamp is not None and timestamp < person.get("ts", timestamp):
            self.stats.flags["stale_updates_ignored"] += 1
            return
        wanted = {**body_ids, **({} if kind == "cio_id" else {kind: value})}
        for k, v in wanted.items():
            owner = s.find(k, v)
            if owner is not None and owner != cio_id:
                return self.fail(kind, value, f"{k} belongs to another person")
            current = person.get(k)
            changeable = (
                kind == "cio_id"
                or (k == "email" and self.allow_email_update_by_id)
                or (k == kind and not found_by_path)
            )
            if current is not None and identifier_key(k, current) != identifier_key(k, v) and not changeable:
                return self.fail(kind, value, f"changing {k} needs the person addressed by cio_id")
        stored = person["attributes"]
        if len(stored) + len(attributes) > MAX_ATTRIBUTES:  # only then can the person pass the limit
            added = sum(1 for n, v in attributes.items() if not cleared(v) and n not in stored)
            removed = sum(1 for n, v in attributes.items() if cleared(v) and n in stored)
            if len(stored) + added - removed > MAX_ATTRIBUTES:
                return self.fail(kind, value, "a person may hold at most 300 attributes")
        if cio_id is None:
            cio_id = s.create()
            self.fresh.add(cio_id)
            person = s.people[cio_id]
            stored = person["attributes"]
        for k, v in wanted.items():
            if k not in person or identifier_key(k, person[k]) != identifier_key(k, v):
                s.set_identifier(cio_id, k, v)
        for name, v in attributes.items():
            if cleared(v):
                stored.pop(name, None)
            else:
                stored[name] = v
        if timestamp is not None:
            person["ts"] = timestamp

    def merge(self, primary: tuple[str, str], secondary: tuple[str, str]) -> None:
        """The vendor's merge: nothing unless both people exist (and the primary is not being created by this
        very request); else the primary gains the attributes it has unset or empty, the secondary's events of
        the last 30 days, its manual segments and its email/phone where it has none, and the secondary is
        deleted. (Message history and journeys, which move too, are not modelled.)"""
        s = self.state
        into, away = s.find(*primary), s.find(*secondary)
        if into is None or away is None or into == away or into in self.fresh:
            self.stats.flags["merges_without_effect"] += 1
            return
        segments = [s.segments[i] for i, segment in dict.items(s.segments) if away in segment["members"]]
        gone, kept = s.delete(away), s.people[into]
        for name, value in gone["attributes"].items():
            if cleared(kept["attributes"].get(name)):
                kept["attributes"][name] = value
        for kind in ("email", "phone"):
            if kind in gone and kind not in kept:
                s.set_identifier(into, kind, gone[kind])
        for segment in segments:
            segment["members"].add(into)
        names = {gone.get(k) for k in ("id", "email", "phone")} - {None}
        since = time.time() - 30 * 86400
        for i, event in enumerate(s.event_log):
            if event["person"] in names and (event["timestamp"] is None or event["timestamp"] >= since):
                s.event_log[i] = {**event, "person": kept.get("id", into)}  # by assignment: saved state sees it
        s.merges.append({"primary": into, "secondary": away, "secondary_id": gone.get("id"), "at": int(time.time())})
        self.stats.flags["people_merged"] += 1

    def delete(self, kind: str, value: str) -> None:
        cio_id = self.state.find(kind, value)
        if cio_id is not None:
            self.state.delete(cio_id)

    def suppress(self, kind: str, value: str) -> None:
        """Suppressing deletes the person and keeps their identifiers from being added back."""
        cio_id = self.state.find(kind, value)
        person = self.state.delete(cio_id) if cio_id is not None else {}
        group = [identifier_key(kind, value)] + [identifier_key(k, person[k]) for k in ("id", "email", "phone") if k in person]
        group = sorted(set(group))
        for key in group:
            self.state.suppressed[key] = group

    def unsuppress(self, kind: str, value: str) -> None:
        for key in self.state.suppressed.pop(identifier_key(kind, value), []):
            self.state.suppressed.pop(key, None)

    def event(self, label: str, event_id: Any, person: str | None = None, timestamp: Any = None,
              attributes: Any = None) -> None:
        """Record an event; a repeated ULID id is dropped (with 200), as Customer.io does."""
        if event_id is not None:
            if not isinstance(event_id, str) or not ULID.match(event_id):
                raise ApiError(400, "event id must be a ULID", {"id": "not a ULID"})
            if event_id in self.state.event_ids:
                self.stats.flags["duplicate_events_dropped"] += 1
                return
            self.state.event_ids.add(event_id)
        self.state.events[label] += 1
        self.state.event_log.append({"person": person, "name": label, "id": event_id, "timestamp": timestamp,
                                     "attributes": attributes or {}})
