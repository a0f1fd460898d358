"""Cordial's account state: contacts with their email and secondary-key indexes, the attribute registry,
lists and import jobs; and how a validated contact change is stored."""

from dataclasses import dataclass
from typing import Any

from .api import utc_now
from .persistence import json_ready
from .tracked import Tracked, TrackedList


@dataclass
class ContactChange:
    """A contact body that passed validation (cordial_validation.contact_change): what it sets."""

    address: str | None
    status: str | None  # None: the subscribe status stays
    attributes: dict[str, Any]  # None values clear an attribute
    memberships: dict[int, bool]  # list id -> member or not
    resubscribing: bool  # unsubscribed -> subscribed without forceSubscribe


class CordialState:
    """Contacts, attribute definitions, lists and import jobs of one account."""

    def __init__(self, secondary_keys: tuple[str, ...]) -> None:
        self.secondary_keys = secondary_keys
        self.clear()

    def clear(self) -> None:
        # A contact is {"email", "subscribeStatus", "attributes"}, kept JSON-ready for cheap dumps.
        self.contacts: dict[str, dict[str, Any]] = Tracked()  # by cID
        self.by_email: dict[str, str] = {}  # lowercased address -> cID
        self.by_key: dict[str, dict[str, str]] = {k: {} for k in self.secondary_keys}  # key -> value -> cID
        self.attributes: dict[str, dict[str, str]] = {}  # key -> {"key", "name", "type"}
        # id -> {"id", "name", "enhanced", "members": a Tracked {cID: joined}}
        self.lists: dict[int, dict[str, Any]] = Tracked(nested=("members",))
        self.list_ids: dict[str, int] = {}  # name -> id
        # Import jobs change while they run, through references held across awaits: saved whole each time.
        self.jobs: dict[str, dict[str, Any]] = {}
        self.activities: list[dict[str, Any]] = TrackedList()  # contact activities, as received (a repeat is another)
        self.next_contact = 1
        self.next_list = 1
        self.next_job = 1

    def parts(self) -> dict[str, Any]:
        """The live state, as persistence saves it."""
        return {
            "contacts": self.contacts,
            "attributes": self.attributes,
            "lists": self.lists,
            "jobs": self.jobs,
            "activities": self.activities,
            "next_contact": self.next_contact,
            "next_list": self.next_list,
            "next_job": self.next_job,
        }

    def to_json(self) -> dict[str, Any]:
        return json_ready(self.parts())

    def load(self, data: dict[str, Any]) -> None:
        self.clear()
        self.contacts = Tracked(data["contacts"])
        for cid, contact in dict.items(self.contacts):
            self._index(cid, contact, add=True)
        self.attributes = data["attributes"]
        self.lists = Tracked({int(i): {**lst, "members": Tracked(lst["members"])} for i, lst in data["lists"].items()},
                             nested=("members",))
        self.list_ids = {lst["name"]: i for i, lst in dict.items(self.lists)}
        self.jobs = data["jobs"]
        self.activities = TrackedList(data.get("activities", []))
        self.next_contact, self.next_list, self.next_job = data["next_contact"], data["next_list"], data["next_job"]

    def _index(self, cid: str, contact: dict[str, Any], add: bool) -> None:
        keys = [(self.by_email, contact["email"].lower())] + [
            (self.by_key[k], str(contact["attributes"][k])) for k in self.secondary_keys if k in contact["attributes"]
        ]
        for index, value in keys:
            if add:
                index[value] = cid
            else:
                index.pop(value, None)

    def put(self, cid: str, contact: dict[str, Any]) -> None:
        """Store a contact (new or changed) and keep the email and secondary-key indexes in step."""
        if cid in self.contacts:
            self._index(cid, self.contacts[cid], add=False)
        self.contacts[cid] = contact
        self._index(cid, contact, add=True)

    def delete(self, cid: str) -> None:
        self._index(cid, self.contacts.pop(cid), add=False)
        for list_id in [i for i, lst in dict.items(self.lists) if cid in lst["members"]]:
            del self.lists[list_id]["members"][cid]

    def find(self, key: str) -> str | None:
        """A contact by `<email>`, `email:<email>`, `cID:<id>` or `<secondary key>:<value>`."""
        prefix, sep, value = key.partition(":")
        if sep and prefix == "cID":
            return value if value in self.contacts else None
        if sep and prefix == "email":
            return self.by_email.get(value.lower())
        if sep and prefix in self.by_key:
            return self.by_key[prefix].get(value)
        return self.by_email.get(key.lower())

    def save(self, cid: str | None, change: ContactChange) -> tuple[str, bool]:
        """Create the contact (cid None) or update it; its id, and whether it was created."""
        current = self.contacts.get(cid) if cid is not None else None
        created = current is None
        if created:
            cid = f"{self.next_contact:024x}"
            self.next_contact += 1
            current = {"email": change.address, "subscribeStatus": "none", "attributes": {}}
        contact = {**current, "attributes": dict(current["attributes"])}
        if change.address is not None:
            contact["email"] = change.address
        if change.status is not None:
            contact["subscribeStatus"] = change.status
        for key, value in change.attributes.items():
            if value is None:
                contact["attributes"].pop(key, None)
            else:
                contact["attributes"][key] = value
        self.put(cid, contact)
        joined = utc_now()
        for list_id, member in change.memberships.items():
            if member:
                self.lists[list_id]["members"].setdefault(cid, joined)
            else:
                self.lists[list_id]["members"].pop(cid, None)
        return cid, created
