"""Customer.io's workspace state: people with their identifier index, manual segments, objects, suppressions
and event ids."""

from collections import Counter, deque
from typing import Any

from .persistence import json_ready
from .tracked import Tracked, TrackedList, TrackedSet


def identifier_key(kind: str, value: str) -> str:
    """Index key of an identifier; emails compare case-insensitively."""
    return f"{kind}:{value.lower() if kind == 'email' else value}"


class CustomerIOState:
    """People, manual segments and objects of one workspace."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        # A person is {"attributes": {...}} plus whichever of id/email/phone it has and "ts", the
        # timestamp of its last ordered update; kept JSON-ready so state dumps need no copying.
        self.people: dict[str, dict[str, Any]] = Tracked()  # by cio_id
        self.index: dict[str, str] = {}  # identifier_key(kind, value) -> cio_id
        self.segments: dict[int, dict[str, Any]] = Tracked(nested=("members",))  # members: a TrackedSet of cio_ids
        self.objects: dict[str, dict[str, Any]] = Tracked()  # "<object_type_id>:<object_id>" -> attributes
        self.suppressed: dict[str, list[str]] = {}  # identifier key -> every key suppressed with it
        self.event_ids: set[str] = TrackedSet()  # ULIDs seen, for deduplication
        self.events: Counter[str] = Counter()  # accepted events by name
        # Accepted events: person (identifier value), name, id, timestamp, attributes; changed by assignment only.
        self.event_log: list[dict[str, Any]] = TrackedList()
        self.failures: deque[dict[str, str]] = deque(maxlen=1000)  # attribute update failures, latest last
        self.merges: list[dict[str, Any]] = TrackedList()  # merges applied: primary and secondary cio_id, when
        self.next_person = 1
        self.next_segment = 1

    def parts(self) -> dict[str, Any]:
        """The live state, as persistence saves it (sets as sorted lists)."""
        return {
            "people": self.people,
            "segments": self.segments,
            "objects": self.objects,
            "suppressed": sorted({tuple(group) for group in self.suppressed.values()}),
            "event_ids": self.event_ids,
            "events": dict(self.events),
            "event_log": self.event_log,
            "attribute_failures": list(self.failures),
            "merges": self.merges,
            "next_person": self.next_person,
            "next_segment": self.next_segment,
        }

    def to_json(self) -> dict[str, Any]:
        return json_ready(self.parts())

    def load(self, data: dict[str, Any]) -> None:
        self.clear()
        self.people = Tracked(data["people"])
        for cio_id, person in dict.items(self.people):
            for kind in ("id", "email", "phone"):
                if kind in person:
                    self.index[identifier_key(kind, person[kind])] = cio_id
        self.segments = Tracked({int(i): {**s, "members": TrackedSet(s["members"])} for i, s in data["segments"].items()},
                                nested=("members",))
        self.objects = Tracked(data["objects"])
        for group in data["suppressed"]:
            for key in group:
                self.suppressed[key] = list(group)
        self.event_ids = TrackedSet(data["event_ids"])
        self.events = Counter(data["events"])
        self.event_log = TrackedList(data.get("event_log", []))
        self.failures.extend(data["attribute_failures"])
        self.merges = TrackedList(data.get("merges", []))
        self.next_person = data["next_person"]
        self.next_segment = data["next_segment"]

    def find(self, kind: str, value: str) -> str | None:
        if kind == "cio_id":
            return value if value in self.people else None
        return self.index.get(identifier_key(kind, value))

    def person(self, kind: str, value: str) -> dict[str, Any] | None:
        """In-process lookup for tests: the stored person, or None."""
        cio_id = self.find(kind, value)
        return None if cio_id is None else self.people[cio_id]

    def create(self) -> str:
        cio_id = f"{self.next_person:08x}"
        self.next_person += 1
        self.people[cio_id] = {"attributes": {}}
        return cio_id

    def set_identifier(self, cio_id: str, kind: str, value: str) -> None:
        person = self.people[cio_id]
        if kind in person:
            del self.index[identifier_key(kind, person[kind])]
        person[kind] = value
        self.index[identifier_key(kind, value)] = cio_id

    def delete(self, cio_id: str) -> dict[str, Any]:
        person = self.people.pop(cio_id)
        for kind in ("id", "email", "phone"):
            if kind in person:
                del self.index[identifier_key(kind, person[kind])]
        for segment_id in [i for i, segment in dict.items(self.segments) if cio_id in segment["members"]]:
            self.segments[segment_id]["members"].discard(cio_id)
        return person

    def is_suppressed(self, kind: str, value: str) -> bool:
        return identifier_key(kind, value) in self.suppressed


def cleared(value: Any) -> bool:
    return value is None or value == ""
