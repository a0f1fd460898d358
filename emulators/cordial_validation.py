"""What Cordial accepts: every request body checked field by field before anything is applied.

Validation is all-or-nothing per request: each function lists every bad field in one ApiError(400) (409 for
a name already taken), or returns what the body asks for.
"""

import re
from datetime import date, datetime
from typing import Any
from urllib.parse import urlparse

from .api import ApiError
from .cordial_state import ContactChange, CordialState

ATTRIBUTE_TYPES = {"string", "number", "date", "geo", "array"}
SUBSCRIBE_STATUSES = {"subscribed", "unsubscribed", "none"}
CONTROL_KEYS = {"channels", "forceSubscribe", "identifyBy", "suppressTriggers"}
EMAIL_CHANNEL_KEYS = {"address", "subscribeStatus", "invalid"}
RESERVED_KEYS = CONTROL_KEYS | {"_id", "cID", "email", "lists"}  # names no attribute or list may take
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _is_date(value: str) -> bool:
    try:
        (datetime if "T" in value else date).fromisoformat(value)
    except ValueError:
        return False
    return True


def _type_problem(kind: str, value: Any) -> str | None:
    if value is None:  # clears the attribute
        return None
    ok = {
        "string": lambda: isinstance(value, str),
        "number": lambda: isinstance(value, int | float) and not isinstance(value, bool),
        "date": lambda: isinstance(value, str) and _is_date(value),
        "geo": lambda: isinstance(value, dict),
        "array": lambda: isinstance(value, list),
    }[kind]()
    return None if ok else f"must be a {kind}" + (" (ISO 8601)" if kind == "date" else "")


def contact_change(body: Any, state: CordialState, cid: str | None, resubscribe: str) -> ContactChange:
    """A whole contact body, for creating a contact (cid None) or updating contact `cid`."""
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object", {"body": "must be a JSON object"})
    problems: dict[str, str] = {}
    address, status = _channel(body.get("channels"), problems)
    force = body.get("forceSubscribe", False)
    for flag in ("forceSubscribe", "suppressTriggers"):
        if not isinstance(body.get(flag, False), bool):
            problems[flag] = "must be true or false"
    attributes, memberships = _attributes_and_lists(body, state, problems)
    current = state.contacts.get(cid) if cid is not None else None
    if current is None and address is None:
        problems["channels.email.address"] = "required to create a contact"
    if address is not None and state.by_email.get(address.lower(), cid) != cid:
        problems["channels.email.address"] = "already belongs to another contact"
    for k in state.secondary_keys:
        if attributes.get(k) is not None and state.by_key[k].get(str(attributes[k]), cid) != cid:
            problems[k] = "must be unique across contacts"
    resubscribing = (
        current is not None
        and current["subscribeStatus"] == "unsubscribed"
        and status == "subscribed"
        and force is not True
    )
    if resubscribing and resubscribe == "reject":
        problems["channels.email.subscribeStatus"] = "resubscribing needs forceSubscribe: true"
    if problems:
        raise ApiError(400, "invalid contact", problems)
    return ContactChange(address, status, attributes, memberships, resubscribing)


def _attributes_and_lists(body: dict[str, Any], state: CordialState,
                          problems: dict[str, str]) -> tuple[dict[str, Any], dict[int, bool]]:
    """The body's top-level keys: defined attributes (checked against their type) and list memberships."""
    attributes: dict[str, Any] = {}
    memberships: dict[int, bool] = {}
    for key, value in body.items():
        if key in CONTROL_KEYS:
            continue
        if key in state.attributes:
            problem = _type_problem(state.attributes[key]["type"], value)
            if problem:
                problems[key] = problem
            attributes[key] = value
        elif key in state.list_ids:
            if not isinstance(value, bool):
                problems[key] = "list membership must be true or false"
            memberships[state.list_ids[key]] = value
        else:
            problems[key] = "not a defined contact attribute or list name"
    return attributes, memberships


def _channel(channels: Any, problems: dict[str, str]) -> tuple[str | None, str | None]:
    """The email address and subscribe status a body sets, recording what is wrong with them."""
    if channels is None:
        return None, None
    if not isinstance(channels, dict) or set(channels) - {"email"} or not isinstance(channels.get("email"), dict):
        problems["channels"] = "only the email channel is configured; expected {'email': {...}}"
        return None, None
    email = channels["email"]
    for key in email.keys() - EMAIL_CHANNEL_KEYS:
        problems[f"channels.email.{key}"] = f"unknown field; expected {sorted(EMAIL_CHANNEL_KEYS)}"
    if not isinstance(email.get("invalid", False), bool):
        problems["channels.email.invalid"] = "must be true or false"
    address, status = email.get("address"), email.get("subscribeStatus")
    if address is not None and not (isinstance(address, str) and EMAIL.match(address)):
        problems["channels.email.address"] = "must be a valid email address"
        address = None
    if status is not None and status not in SUBSCRIBE_STATUSES:
        problems["channels.email.subscribeStatus"] = "must be subscribed, unsubscribed or none"
    return address, status


def new_attribute(body: Any, state: CordialState) -> dict[str, str]:
    """An attribute definition: {"key", "name", "type"}."""
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object", {"body": "must be a JSON object"})
    key, kind, name = body.get("key"), body.get("type"), body.get("name", body.get("key"))
    problems = {k: "unknown field; expected key, name, type" for k in body.keys() - {"key", "name", "type"}}
    if not isinstance(key, str) or not ATTRIBUTE_KEY.match(key) or key in RESERVED_KEYS:
        problems["key"] = "must be letters, digits and underscores, and not a reserved key"
    if kind not in ATTRIBUTE_TYPES:
        problems["type"] = f"must be one of {sorted(ATTRIBUTE_TYPES)}"
    if not isinstance(name, str) or not name:
        problems["name"] = "must be a non-empty string"
    if problems:
        raise ApiError(400, "invalid attribute", problems)
    if key in state.attributes or key in state.list_ids:
        raise ApiError(409, "key is already taken", {"key": "an attribute or list already uses it"})
    return {"key": key, "name": name, "type": kind}


def new_list(body: Any, state: CordialState) -> tuple[str, bool]:
    """A list's name and whether it is enhanced."""
    name = body.get("name") if isinstance(body, dict) else None
    enhanced = body.get("enhanced", False) if isinstance(body, dict) else False
    unknown = body.keys() - {"name", "enhanced"} if isinstance(body, dict) else set()
    if unknown:
        raise ApiError(400, "invalid list", {k: "unknown field; expected name, enhanced" for k in unknown})
    if not isinstance(name, str) or not name.strip() or name in RESERVED_KEYS:
        raise ApiError(400, "invalid list", {"name": "must be a non-empty string and not a reserved key"})
    if not isinstance(enhanced, bool):
        raise ApiError(400, "invalid list", {"enhanced": "must be true or false"})
    if name in state.list_ids or name in state.attributes:
        raise ApiError(409, "name is already taken", {"name": "a list or attribute already uses it"})
    return name, enhanced


def new_import(body: Any) -> tuple[str, bool]:
    """A contact import's file URL and whether it sets subscribe statuses."""
    source = body.get("source") if isinstance(body, dict) else None
    url = source.get("url") if isinstance(source, dict) else None
    if not isinstance(url, str) or urlparse(url).scheme not in ("file", "http", "https"):
        raise ApiError(400, "invalid import", {"source.url": "must be a file://, http:// or https:// URL"})
    unknown = [*body.keys() - {"source", "subscribe"}]
    unknown += [f"source.{k}" for k in source.keys() - {"transport", "url"}]
    if unknown:
        raise ApiError(400, "invalid import", {k: "unknown field" for k in unknown})
    if not isinstance(source.get("transport", ""), str):
        raise ApiError(400, "invalid import", {"source.transport": "must be a string"})
    subscribe = body.get("subscribe", True)
    if not isinstance(subscribe, bool):
        raise ApiError(400, "invalid import", {"subscribe": "must be true or false"})
    return url, subscribe


ACTIVITY_KEYS = {"email", "cID", "a", "properties", "ats"}


def contact_activity(body: Any) -> dict[str, Any]:
    """A contact activity: exactly one of email / cID, an action name `a`, optional `properties` (an object)
    and `ats` (when it happened, ISO 8601)."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid contact activity", {"": "must be a JSON object"})
    problems = {k: "unknown field" for k in body.keys() - ACTIVITY_KEYS}
    if ("email" in body) == ("cID" in body):
        problems["email"] = "exactly one of email and cID is required"
    elif "email" in body and not (isinstance(body["email"], str) and EMAIL.match(body["email"])):
        problems["email"] = "must be an email address"
    elif "cID" in body and not isinstance(body["cID"], str):
        problems["cID"] = "must be a string"
    if not (isinstance(body.get("a"), str) and body["a"].strip()):
        problems["a"] = "the action name is required"
    if not isinstance(body.get("properties", {}), dict):
        problems["properties"] = "must be an object"
    if "ats" in body and not (isinstance(body["ats"], str) and _is_date(body["ats"].replace("Z", "+00:00"))):
        problems["ats"] = "must be an ISO 8601 time"
    if problems:
        raise ApiError(400, "invalid contact activity", problems)
    return body
