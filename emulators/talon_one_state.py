"""Talon.One's deployment state: attribute definitions, customer profiles and audiences; and how a validated
request (talon_one_validation) is stored."""

from typing import Any

from .api import utc_now
from .persistence import json_ready
from .tracked import Tracked, TrackedList, TrackedSet


class TalonOneState:
    """Attribute definitions, customer profiles and audiences of one deployment."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.attributes: dict[str, dict[str, dict[str, Any]]] = {}  # entity -> name -> attribute
        # A profile is {"id", "created", "attributes"} plus "hidden": true while only an audience add knows it.
        self.profiles: dict[str, dict[str, Any]] = Tracked()  # by integrationId
        self.audiences: dict[int, dict[str, Any]] = Tracked(nested=("members",))  # members: a TrackedSet of integrationIds
        self.events: list[dict[str, Any]] = TrackedList()  # custom events, as received (Talon.One keeps every one)
        self.next_attribute = 1
        self.next_profile = 1
        self.next_audience = 1

    def parts(self) -> dict[str, Any]:
        """The live state, as persistence saves it (sets as sorted lists)."""
        return {
            "attributes": self.attributes,
            "profiles": self.profiles,
            "audiences": self.audiences,
            "events": self.events,
            "next_attribute": self.next_attribute,
            "next_profile": self.next_profile,
            "next_audience": self.next_audience,
        }

    def to_json(self) -> dict[str, Any]:
        return json_ready(self.parts())

    def load(self, data: dict[str, Any]) -> None:
        self.attributes = data["attributes"]
        self.profiles = Tracked(data["profiles"])
        self.audiences = Tracked({int(i): {**a, "members": TrackedSet(a["members"])} for i, a in data["audiences"].items()},
                                 nested=("members",))
        self.events = TrackedList(data.get("events", []))
        self.next_attribute = data["next_attribute"]
        self.next_profile = data["next_profile"]
        self.next_audience = data["next_audience"]

    def profile(self, integration_id: str, hidden: bool = False) -> dict[str, Any]:
        """The stored profile, created when missing (hidden when only an audience add created it)."""
        profile = self.profiles.get(integration_id)
        if profile is None:
            profile = self.profiles[integration_id] = {"id": self.next_profile, "created": utc_now(), "attributes": {}}
            self.next_profile += 1
            if hidden:
                profile["hidden"] = True
        elif not hidden:
            profile.pop("hidden", None)
        return profile

    def preview_profile(self, integration_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """The profile as an update would leave it, storing nothing (a dry run)."""
        current = self.profiles.get(integration_id, {"id": 0, "created": utc_now(), "attributes": {}})
        return {**current, "attributes": {**current["attributes"], **attributes}}

    def update_profile(self, integration_id: str, attributes: dict[str, Any],
                       changes: dict[str, list[int]]) -> dict[str, Any]:
        """Store one profile's attributes and audience adds/deletes; the stored profile."""
        profile = self.profile(integration_id)
        profile["attributes"].update(attributes)
        for audience_id in changes["adds"]:
            self.audiences[audience_id]["members"].add(integration_id)
        for audience_id in changes["deletes"]:
            self.audiences[audience_id]["members"].discard(integration_id)
        return profile

    def change_memberships(self, actions: list[dict[str, Any]]) -> None:
        """Apply audience actions in order; an add creates a hidden profile for an unknown id."""
        for item in actions:
            members = self.audiences[item["audienceId"]]["members"]
            if item["action"] == "add":
                self.profile(item["profileIntegrationId"], hidden=True)
                members.add(item["profileIntegrationId"])
            else:
                members.discard(item["profileIntegrationId"])

    def add_audience(self, body: dict[str, Any], account_id: int) -> dict[str, Any]:
        audience_id = self.next_audience
        self.next_audience += 1
        audience = {"id": audience_id, "accountId": account_id, "created": utc_now(), "sandbox": False}
        audience.update(body, members=TrackedSet())
        self.audiences[audience_id] = audience
        return audience

    def add_attribute(self, body: dict[str, Any], account_id: int) -> dict[str, Any]:
        attribute = {
            "id": self.next_attribute,
            "created": utc_now(),
            "accountId": account_id,
            "entity": body["entity"],
            "name": body["name"],
            "title": body["title"],
            "type": body["type"],
            "description": body["description"],
            "suggestions": body["suggestions"],
            "editable": body["editable"],
            **({"eventType": body["eventType"]} if body.get("eventType") else {}),
        }
        self.next_attribute += 1
        self.attributes.setdefault(body["entity"], {})[attribute_key(body)] = attribute
        return attribute

    def add_event(self, body: dict[str, Any]) -> dict[str, Any]:
        event = {"id": len(self.events) + 1, "created": utc_now(), "profileId": body.get("profileId"),
                 "type": body["type"], "attributes": body.get("attributes") or {}}
        self.events.append(event)
        return event


def attribute_key(body: dict[str, Any]) -> str:
    """Attributes are unique by name within their entity; an Event attribute within its event type."""
    return f"{body['eventType']}:{body['name']}" if body.get("entity") == "Event" and body.get("eventType") else body["name"]
