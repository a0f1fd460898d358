"""What Customer.io accepts: identifiers, timestamps, attribute and event limits, and v2 operations, checked
before anything is applied (each function raises ApiError(400) naming the field, or returns what it read)."""

import re
from typing import Any

from .api import ApiError, json_size

ID_KINDS = ("id", "email", "phone", "cio_id")
MAX_ID_BYTES = 150
MAX_NAME_BYTES = 150
MAX_VALUE_BYTES = 1000
MAX_ATTRIBUTES = 300
MAX_EVENT_NAME_BYTES = 100
MAX_EVENT_DATA_BYTES = 100_000
MAX_OBJECT_ATTRIBUTE_BYTES = 100_000
MAX_ENTITY_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_SEGMENT_IDS = 1000
ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$", re.IGNORECASE)
PERSON_ACTIONS = {
    "identify", "delete", "event", "screen", "page", "add_relationships", "delete_relationships",
    "add_device", "delete_device", "merge", "suppress", "unsuppress",
}  # fmt: skip
OBJECT_ACTIONS = {"identify", "identify_anonymous", "delete", "add_relationships", "delete_relationships"}
DELIVERY_METRICS = {"opened", "converted", "delivered"}


def path_identifier(value: str) -> tuple[str, str]:
    """The v1 path identifier's kind, worked out from its shape as the vendor does."""
    if len(value.encode()) > MAX_ID_BYTES:
        raise ApiError(400, "identifier is longer than 150 bytes", {"identifier": "longer than 150 bytes"})
    if value.startswith("cio_"):
        return "cio_id", value[4:]
    return ("email" if "@" in value else "id"), value


def v2_identifier(identifiers: Any) -> tuple[str, str]:
    if not isinstance(identifiers, dict) or len(identifiers) != 1 or next(iter(identifiers)) not in ID_KINDS:
        raise ApiError(400, "must hold exactly one of id, email, phone, cio_id", {"identifiers": "invalid"})
    kind, value = next(iter(identifiers.items()))
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{kind} must be a non-empty string", {f"identifiers.{kind}": "invalid"})
    if kind == "id" and len(value.encode()) > MAX_ID_BYTES:
        raise ApiError(400, "id is longer than 150 bytes", {"identifiers.id": "too long"}, reason="too_large")
    if kind == "email" and "@" not in value:
        raise ApiError(400, "email is not an email address", {"identifiers.email": "invalid"})
    return kind, value


def merge_party(value: Any, name: str) -> tuple[str, str]:
    """A person_merge's primary or secondary: exactly one of id, email, cio_id (the OpenAPI's oneOf)."""
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ("id", "email", "cio_id"):
        raise ApiError(400, f"{name} must hold exactly one of id, email, cio_id", {name: "invalid"})
    kind, identifier = next(iter(value.items()))
    if not isinstance(identifier, str) or not identifier:
        raise ApiError(400, f"{name}.{kind} must be a non-empty string", {f"{name}.{kind}": "invalid"})
    return kind, identifier


def check_timestamp(value: Any, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ApiError(400, f"{name} must be an integer Unix timestamp", {name: "not an integer"}, reason="not_integer")


def check_reserved(attributes: dict[str, Any], entry: dict[str, Any]) -> None:
    """The types the OpenAPI gives the reserved keys of a v2 identify."""
    if "_update" in attributes and not isinstance(attributes["_update"], bool):
        raise ApiError(400, "_update must be true or false", {"attributes._update": "not a boolean"})
    preferences = attributes.get("cio_subscription_preferences", {})
    topics = preferences.get("topics", {}) if isinstance(preferences, dict) else None
    if not isinstance(topics, dict) or not all(isinstance(v, bool) for v in topics.values()):
        message = "cio_subscription_preferences must be an object whose topics are true or false"
        raise ApiError(400, message, {"attributes.cio_subscription_preferences": "invalid"})
    if "cio_relationships" in entry and not isinstance(entry["cio_relationships"], list):
        raise ApiError(400, "cio_relationships must be a list", {"cio_relationships": "not a list"})


def value_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, dict | list):
        return json_size(value)
    return len(str(value))  # numbers and booleans: no need to run the JSON encoder


def attribute_problems(attributes: dict[str, Any]) -> dict[str, str]:
    """Attributes over the documented name/value limits, by name."""
    problems = {}
    for name, value in attributes.items():
        if len(name.encode()) > MAX_NAME_BYTES:
            problems[name] = "attribute name is longer than 150 bytes"
        elif value is not None and value_bytes(value) > MAX_VALUE_BYTES:
            problems[name] = "attribute value is longer than 1000 bytes"
    return problems


def check_event(name: Any, data: Any, data_field: str) -> None:
    if not isinstance(name, str) or not name:
        raise ApiError(400, "event name is required", {"name": "required"})
    if len(name.encode()) > MAX_EVENT_NAME_BYTES:
        raise ApiError(400, "event name is longer than 100 bytes", {"name": "too long"}, reason="too_large")
    if data is not None and (not isinstance(data, dict) or json_size(data) > MAX_EVENT_DATA_BYTES):
        raise ApiError(400, "event data must be an object of at most 100,000 bytes", {data_field: "invalid"})


def identify_attributes(entry: dict[str, Any]) -> dict[str, Any]:
    """The attributes of a v2 person identify, within every documented limit."""
    attributes = entry.get("attributes", {})
    if not isinstance(attributes, dict):
        raise ApiError(400, "attributes must be an object", {"attributes": "invalid"})
    check_timestamp(attributes.get("created_at"), "attributes.created_at")
    check_reserved(attributes, entry)
    problems = attribute_problems(attributes)
    if problems:
        name, problem = next(iter(problems.items()))
        raise ApiError(400, problem, {f"attributes.{name}": problem}, reason="too_large")
    if len(attributes) > MAX_ATTRIBUTES:
        raise ApiError(400, "more than 300 attributes", {"attributes": "too many"}, reason="too_large")
    return attributes


def object_key(entry: dict[str, Any]) -> str:
    """A v2 object operation's action checked, and the key of the object it addresses."""
    action = entry.get("action")
    if action not in OBJECT_ACTIONS:
        raise ApiError(400, f"action {action!r} is not valid for an object", {"action": "invalid"})
    ids = entry.get("identifiers")
    if not isinstance(ids, dict) or not (
        isinstance(ids.get("cio_object_id"), str)
        or (isinstance(ids.get("object_type_id"), str) and isinstance(ids.get("object_id"), str))
    ):
        message = "identifiers need object_type_id and object_id, or cio_object_id"
        raise ApiError(400, message, {"identifiers": "invalid"})
    if len(ids.get("object_id", "").encode()) > MAX_ID_BYTES:
        message = "object_id is longer than 150 bytes"
        raise ApiError(400, message, {"identifiers.object_id": "too long"}, reason="too_large")
    return ids.get("cio_object_id") or f"{ids['object_type_id']}:{ids['object_id']}"


def object_attributes(entry: dict[str, Any]) -> dict[str, Any]:
    attributes = entry.get("attributes", {})
    if not isinstance(attributes, dict) or json_size(attributes) > MAX_OBJECT_ATTRIBUTE_BYTES:
        raise ApiError(400, "attributes must be an object of at most 100 KB", {"attributes": "invalid"})
    return attributes


def check_delivery(entry: dict[str, Any]) -> None:
    if entry.get("action") != "event":
        raise ApiError(400, "a delivery only takes the event action", {"action": "invalid"})
    if not isinstance(entry.get("identifiers"), dict) or not isinstance(entry["identifiers"].get("id"), str):
        raise ApiError(400, "identifiers.id (the delivery id) is required", {"identifiers": "invalid"})
    if entry.get("name") not in DELIVERY_METRICS:
        raise ApiError(400, "name must be opened, converted or delivered", {"name": "invalid"})
    check_timestamp(entry.get("timestamp"), "timestamp")


def segment_ids(id_type: str, body: Any) -> list[str]:
    """The ids of a segment membership change, of a valid `id_type`."""
    if id_type not in ("id", "email", "cio_id"):
        raise ApiError(400, "id_type must be id, email or cio_id", {"id_type": "invalid"})
    ids = body.get("ids") if isinstance(body, dict) else None
    if (
        not isinstance(ids, list)
        or not 1 <= len(ids) <= MAX_SEGMENT_IDS
        or not all(isinstance(i, str) for i in ids)
    ):
        raise ApiError(400, "ids must be a list of 1 to 1000 strings", {"ids": "invalid"})
    return ids


def new_segment(body: Any) -> tuple[str, str]:
    """A manual segment's name and description."""
    spec = body.get("segment") if isinstance(body, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"].strip():
        message = 'body must be {"segment": {"name": ..., "description": ...}}'
        raise ApiError(400, message, {"segment.name": "required"})
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise ApiError(400, "description must be a string", {"segment.description": "invalid"})
    return spec["name"], description
