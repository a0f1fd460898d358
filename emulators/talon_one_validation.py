"""What Talon.One accepts: request bodies checked field by field against the SDK's request models before
anything is applied.

Validation is all-or-nothing per request: each function lists every problem, by JSON pointer, in one
ApiError(400) (404 for an unknown audience, 409 for a name already taken), or returns what the body asks for.
"""

import re
from datetime import datetime
from typing import Any

from .api import ApiError
from .talon_one_state import TalonOneState, attribute_key

ENTITIES = {  # as talon-one-sdk 26.2's NewAttribute has them (no LoyaltyCard)
    "Application", "Campaign", "CustomerProfile", "CustomerSession", "CartItem", "Coupon", "Event",
    "Giveaway", "Referral", "Store",
}  # fmt: skip
TYPES = {
    "string", "number", "boolean", "time", "location",
    "(list string)", "(list number)", "(list time)", "(list location)",
}  # fmt: skip
RESPONSE_CONTENT = {
    "customerProfile", "triggeredCampaigns", "loyalty", "event", "awardedGiveaways", "ruleFailureReasons",
}  # fmt: skip
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z]\w*$")
ATTRIBUTE_TITLE = re.compile(r"^[A-Za-z][A-Za-z0-9_.!~*'() -]*$")
MAX_ITEMS = 1000
MAX_ID_CHARS = 1000
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def type_ok(kind: str, value: Any) -> bool:
    if kind.startswith("(list "):
        return isinstance(value, list) and all(type_ok(kind[6:-1], v) for v in value)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "time":
        if not isinstance(value, str) or not RFC3339.match(value):
            return False
        try:
            datetime.fromisoformat(value[:19].replace(" ", "T"))  # field ranges (month 13, hour 25)
        except ValueError:
            return False
        return True
    return isinstance(value, str)  # string, location


def valid_id(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= MAX_ID_CHARS


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ints(value: Any) -> bool:
    return isinstance(value, list) and all(map(_is_int, value))


def _matches(pattern: re.Pattern) -> Any:
    return lambda value: isinstance(value, str) and pattern.match(value) is not None


_STR, _BOOL, _OBJECT = (lambda v: isinstance(v, str)), (lambda v: isinstance(v, bool)), (lambda v: isinstance(v, dict))
# talon-one-sdk's (26.2) request models, field by field: JSON name -> (required, check, what the value must
# be). An optional field may be null.
NEW_ATTRIBUTE = {
    "entity": (True, lambda v: isinstance(v, str) and v in ENTITIES, f"one of {sorted(ENTITIES)}"),
    "eventType": (False, _STR, "a string"),
    "name": (True, _matches(ATTRIBUTE_NAME), "a letter, then letters, digits or _"),
    "title": (True, _matches(ATTRIBUTE_TITLE), "a letter, then letters, digits, spaces or _.!~*'()-"),
    "type": (True, lambda v: isinstance(v, str) and v in TYPES, f"one of {sorted(TYPES)}"),
    "description": (True, _STR, "a string"),
    "suggestions": (True, lambda v: isinstance(v, list) and len(v) <= 50 and all(isinstance(i, str) and i for i in v),
                    "a list of at most 50 non-empty strings"),
    "hasAllowedList": (False, _BOOL, "true or false"),
    "restrictedBySuggestions": (False, _BOOL, "true or false"),
    "editable": (True, _BOOL, "true or false"),
    "subscribedApplicationsIds": (False, _ints, "a list of integers"),
    "subscribedCatalogsIds": (False, _ints, "a list of integers"),
    "allowedSubscriptions": (False, lambda v: isinstance(v, list) and len(v) <= 2
                             and all(i in ("application", "catalog") for i in v), "at most 2 of application, catalog"),
}  # fmt: skip
NEW_AUDIENCE = {
    "name": (True, lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "sandbox": (False, _BOOL, "true or false"),
    "description": (False, _STR, "a string"),
    "integration": (False, _STR, "a string"),
    "integrationId": (False, valid_id, "1 to 1000 characters"),
    "createdIn3rdParty": (False, _BOOL, "true or false"),
    "lastUpdate": (False, lambda v: type_ok("time", v), "an RFC 3339 time"),
}
PROFILE_V2 = {  # CustomerProfileIntegrationRequestV2; audiencesChanges is a ProfileAudiencesChanges
    "attributes": (False, _OBJECT, "an object"),
    "evaluableCampaignIds": (False, _ints, "a list of campaign ids"),
    "audiencesChanges": (False, lambda v: isinstance(v, dict) and set(v) == {"adds", "deletes"}
                         and all(map(_ints, v.values())), "{adds, deletes}, both lists of audience ids"),
    "responseContent": (False, lambda v: isinstance(v, list) and all(i in RESPONSE_CONTENT for i in v),
                        f"a list of {sorted(RESPONSE_CONTENT)}"),
}  # fmt: skip
PROFILE_ITEM = {  # MultipleCustomerProfileIntegrationRequestItem
    "integrationId": (True, valid_id, "1 to 1000 characters"),
    "attributes": (False, _OBJECT, "an object"),
}
EVENT_V2 = {  # IntegrationEventV2Request
    "profileId": (False, valid_id, "1 to 1000 characters"),
    "storeIntegrationId": (False, _STR, "a string"),
    "evaluableCampaignIds": (False, _ints, "a list of campaign ids"),
    "type": (True, lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "attributes": (False, _OBJECT, "an object"),
    "loyaltyCards": (False, lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v), "a list of strings"),
    "responseContent": (False, lambda v: isinstance(v, list) and all(i in RESPONSE_CONTENT for i in v),
                        f"a list of {sorted(RESPONSE_CONTENT)}"),
}  # fmt: skip
AUDIENCE_ACTION = {  # CustomerProfileAudienceRequestItem
    "action": (True, ("add", "delete").__contains__, "add or delete"),
    "profileIntegrationId": (True, valid_id, "1 to 1000 characters"),
    "audienceId": (True, _is_int, "an integer"),
}


def _field_problems(body: dict[str, Any], model: dict[str, tuple], pointer: str = "") -> dict[str, str]:
    """Unknown keys, missing required fields and values of the wrong type, by JSON pointer."""
    problems = {f"{pointer}/{key}": f"unknown field {key!r}" for key in body.keys() - model.keys()}
    for key, (required, check, expected) in model.items():
        if key not in body:
            if required:
                problems[f"{pointer}/{key}"] = f"{key} is required: {expected}"
        elif (body[key] is not None or required) and not check(body[key]):
            problems[f"{pointer}/{key}"] = f"{key} must be {expected}"
    return problems


def _invalid(problems: dict[str, str], status: int = 400) -> ApiError:
    first = next(iter(problems.values()))
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return ApiError(status, first + more, problems)


def _object(body: Any, model: dict[str, tuple]) -> dict[str, Any]:
    """A body that must be a JSON object matching `model` exactly."""
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object", {"": "must be a JSON object"})
    problems = _field_problems(body, model)
    if problems:
        raise _invalid(problems)
    return body


def _attribute_problems(attributes: Any, state: TalonOneState, pointer: str, event_type: str | None = None
                        ) -> dict[str, str]:
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        return {pointer: "attributes must be an object"}
    entity = "Event" if event_type else "CustomerProfile"
    defined = state.attributes.get(entity, {})
    problems = {}
    for name, value in attributes.items():
        spec = defined.get(attribute_key({"entity": entity, "eventType": event_type, "name": name})) or (
            defined.get(name) if event_type else None)
        if spec is None:
            owner = f"events of type {event_type!r}" if event_type else "CustomerProfile"
            problems[f"{pointer}/{name}"] = f"attribute {name!r} is not defined for {owner}"
        elif not type_ok(spec["type"], value):
            problems[f"{pointer}/{name}"] = f"attribute {name!r} must be of type {spec['type']}"
    return problems


def _check_audiences(ids: dict[str, int], state: TalonOneState) -> None:
    """404 for audience ids (by JSON pointer) that do not exist."""
    missing = {p: f"audience {i} does not exist" for p, i in ids.items() if i not in state.audiences}
    if missing:
        raise _invalid(missing, 404)


def profile_update(body: Any, integration_id: str, run: bool, dry: bool,
                   state: TalonOneState) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """One profile's update (no body is an empty one): the attributes it sets and its audience changes."""
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object", {"": "must be a JSON object"})
    problems = _field_problems(body, PROFILE_V2)
    if not valid_id(integration_id):
        problems["integrationId"] = "integrationId must be 1 to 1000 characters"
    if dry and not run:
        problems["dry"] = "dry only works with runRuleEngine=true"
    if "responseContent" in body and not run:
        problems["/responseContent"] = "responseContent needs runRuleEngine=true"
    if "evaluableCampaignIds" in body and not dry:
        problems["/evaluableCampaignIds"] = "evaluableCampaignIds needs dry=true"
    if "/attributes" not in problems:
        problems.update(_attribute_problems(body.get("attributes"), state, "/attributes"))
    if problems:
        raise _invalid(problems)
    changes = body.get("audiencesChanges") or {"adds": [], "deletes": []}
    _check_audiences({
        f"/audiencesChanges/{k}/{n}": i for k in ("adds", "deletes") for n, i in enumerate(changes[k])
    }, state)  # fmt: skip
    return body.get("attributes") or {}, changes


def profile_items(body: Any, state: TalonOneState) -> list[dict[str, Any]]:
    """A bulk profile update's `customerProfiles`, 1 to 1000 of them."""
    items = body.get("customerProfiles") if isinstance(body, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        message = "customerProfiles must hold 1 to 1000 profiles"
        raise ApiError(400, message, {"/customerProfiles": "1 to 1000 items"})
    problems = {f"/{key}": f"unknown field {key!r}" for key in body.keys() - {"customerProfiles"}}
    for n, item in enumerate(items):
        pointer = f"/customerProfiles/{n}"
        if not isinstance(item, dict):
            problems[pointer] = "must be an object"
            continue
        problems.update(_field_problems(item, PROFILE_ITEM, pointer))
        if f"{pointer}/attributes" not in problems:
            problems.update(_attribute_problems(item.get("attributes"), state, f"{pointer}/attributes"))
    if problems:
        raise _invalid(problems)
    return items


def audience_actions(body: Any, state: TalonOneState) -> list[dict[str, Any]]:
    """A customer_audiences request's `data`: 1 to 1000 add/delete actions on existing audiences."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_ITEMS:
        raise ApiError(400, "data must hold 1 to 1000 actions", {"/data": "1 to 1000 items"})
    problems = {f"/{key}": f"unknown field {key!r}" for key in body.keys() - {"data"}}
    for n, item in enumerate(data):
        if not isinstance(item, dict):
            problems[f"/data/{n}"] = "must be an object"
            continue
        problems.update(_field_problems(item, AUDIENCE_ACTION, f"/data/{n}"))
    if problems:
        raise _invalid(problems)
    _check_audiences({f"/data/{n}/audienceId": item["audienceId"] for n, item in enumerate(data)}, state)
    return data


def new_audience(body: Any, state: TalonOneState) -> dict[str, Any]:
    """A NewAudience whose (integration, integrationId) no other audience has."""
    body = _object(body, NEW_AUDIENCE)
    integration_id, integration = body.get("integrationId"), body.get("integration")
    if integration_id is not None and any(
        a.get("integrationId") == integration_id and a.get("integration") == integration
        for a in state.audiences.peek_values()
    ):
        raise ApiError(409, "an audience with this integrationId already exists", {"/integrationId": "taken"})
    return body


def custom_event(body: Any, state: TalonOneState) -> dict[str, Any]:
    """An IntegrationEventV2Request whose attributes are defined for its event type."""
    body = _object(body, EVENT_V2)
    problems = _attribute_problems(body.get("attributes"), state, "/attributes", body["type"])
    if problems:
        raise _invalid(problems)
    return body


def new_attribute(body: Any, state: TalonOneState) -> dict[str, Any]:
    """A NewAttribute whose name and title are free for its entity (an Event attribute: for its event type)."""
    body = _object(body, NEW_ATTRIBUTE)
    same_entity = {k: a for k, a in state.attributes.get(body["entity"], {}).items()
                   if a.get("eventType") == body.get("eventType")}
    if attribute_key(body) in state.attributes.get(body["entity"], {}) or any(
            a["title"] == body["title"] for a in same_entity.values()):
        message = "an attribute with this name or title already exists for this entity"
        raise ApiError(409, message, {"/name": "taken"})
    return body
