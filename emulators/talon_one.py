"""Talon.One emulator: Integration API v2 profiles and audiences, Management API attributes and audiences.

The contract is /work/shared/destinations.md §3 and §6 "Talon.One emulator". Choices where the vendor is
silent:

- Every error body is the SDK's `ErrorResponse`: `{"message", "errors": [{"title", "details", "source"}]}`
  where `source` holds one of `pointer` (a JSON pointer into the body; "" for the request as a whole) or
  `parameter` (a query parameter or header name).
- Validation is all-or-nothing per request: 400 lists every problem and applies nothing. Profile attributes
  must be defined for `CustomerProfile` with a matching type; `null` is rejected (the vendor documents no
  way to unset one), `time` needs an RFC 3339 string with an offset, `location` takes a string.
- Request bodies are checked field by field against the SDK's request models (talon-one-sdk's NewAttribute,
  NewAudience, CustomerProfileIntegrationRequestV2, ...; written out here, as the product does not depend on
  the SDK): a missing required field, a wrong type or an unknown key is 400. Nothing is filled in.
- Unknown audience ids (in `audiencesChanges` or `customer_audiences`) are 404; empty `customerProfiles`
  or `data` lists are 400 like 1001-item ones.
- `dry` without `runRuleEngine=true` is 400 rather than silently ignored. No rules exist here, so
  `effects` is always empty.
- A request whose profile ids overlap another in-flight request's gets 409 (base.Emulator claims).
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .api import ApiError, Endpoint, json_body, same, scheme_token, utc_now
from .base import Emulator, EmulatorConfig
from .rate_limit import RateLimit

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


@dataclass(kw_only=True)
class TalonOneConfig(EmulatorConfig):
    integration_key: str = field(repr=False)
    management_key: str = field(repr=False)
    port: int = 8703
    account_id: int = 1
    # Integration API: no published number; ~300 rps is the partner figure. Management: ~3 rps per endpoint.
    rate_limits: dict[str, RateLimit] = field(
        default_factory=lambda: {"integration": RateLimit(300), "management": RateLimit(3, per_route=True)}
    )


def _type_ok(kind: str, value: Any) -> bool:
    if kind.startswith("(list "):
        return isinstance(value, list) and all(_type_ok(kind[6:-1], v) for v in value)
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


def _valid_id(value: Any) -> bool:
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
    "entity": (True, ENTITIES.__contains__, f"one of {sorted(ENTITIES)}"),
    "eventType": (False, _STR, "a string"),
    "name": (True, _matches(ATTRIBUTE_NAME), "a letter, then letters, digits or _"),
    "title": (True, _matches(ATTRIBUTE_TITLE), "a letter, then letters, digits, spaces or _.!~*'()-"),
    "type": (True, TYPES.__contains__, f"one of {sorted(TYPES)}"),
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
    "integrationId": (False, _valid_id, "1 to 1000 characters"),
    "createdIn3rdParty": (False, _BOOL, "true or false"),
    "lastUpdate": (False, lambda v: _type_ok("time", v), "an RFC 3339 time"),
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
    "integrationId": (True, _valid_id, "1 to 1000 characters"),
    "attributes": (False, _OBJECT, "an object"),
}
AUDIENCE_ACTION = {  # CustomerProfileAudienceRequestItem
    "action": (True, ("add", "delete").__contains__, "add or delete"),
    "profileIntegrationId": (True, _valid_id, "1 to 1000 characters"),
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


def _profile_id(request: Request, body: Any) -> list[str]:
    return [request.path_params["integrationId"]]


def _profile_ids(request: Request, body: Any) -> list[str]:
    """Integration ids a bulk profile request touches; tolerant, since validation comes later."""
    items = body.get("customerProfiles") if isinstance(body, dict) else None
    return [i["integrationId"] for i in items or () if isinstance(i, dict) and _valid_id(i.get("integrationId"))]


def _audience_profile_ids(request: Request, body: Any) -> list[str]:
    items = body.get("data") if isinstance(body, dict) else None
    key = "profileIntegrationId"
    return [i[key] for i in items or () if isinstance(i, dict) and _valid_id(i.get(key))]


class TalonOneState:
    """Attribute definitions, customer profiles and audiences of one deployment."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.attributes: dict[str, dict[str, dict[str, Any]]] = {}  # entity -> name -> attribute
        # A profile is {"id", "created", "attributes"} plus "hidden": true while only an audience add knows it.
        self.profiles: dict[str, dict[str, Any]] = {}  # by integrationId
        self.audiences: dict[int, dict[str, Any]] = {}  # members is a set of profile integrationIds
        self.next_attribute = 1
        self.next_profile = 1
        self.next_audience = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": self.attributes,
            "profiles": self.profiles,
            "audiences": {str(i): {**a, "members": sorted(a["members"])} for i, a in self.audiences.items()},
            "next_attribute": self.next_attribute,
            "next_profile": self.next_profile,
            "next_audience": self.next_audience,
        }

    def load(self, data: dict[str, Any]) -> None:
        self.attributes = data["attributes"]
        self.profiles = data["profiles"]
        self.audiences = {int(i): {**a, "members": set(a["members"])} for i, a in data["audiences"].items()}
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


class TalonOne:
    def __init__(self, config: TalonOneConfig):
        self.config = config
        self.state = TalonOneState()
        self.api = Emulator(
            config,
            self.state,
            {"integration": self._integration_auth, "management": self._management_auth},
            self._render_error,
        )

    def app(self) -> Starlette:
        I, M = "integration", "management"
        return self.api.app([
            Endpoint("PUT", "/v2/customer_profiles/{integrationId}", self.update_profile, I, I,
                     claims=_profile_id, items=lambda body: 1),
            Endpoint("PUT", "/v2/customer_profiles", self.update_profiles, I, I,
                     claims=_profile_ids, items=lambda body: len(body["customerProfiles"])),
            Endpoint("POST", "/v2/audiences", self.create_audience, I, I),
            Endpoint("DELETE", "/v2/audiences/{audienceId}", self.delete_audience, I, I),
            Endpoint("DELETE", "/v2/audiences/{audienceId}/memberships", self.clear_audience, I, I),
            Endpoint("POST", "/v2/customer_audiences", self.change_audiences, I, I,
                     claims=_audience_profile_ids, items=lambda body: len(body["data"])),
            Endpoint("GET", "/v1/attributes", self.list_attributes, M, M),
            Endpoint("POST", "/v1/attributes", self.create_attribute, M, M),
            Endpoint("GET", "/v1/audiences", self.list_audiences, M, M),
        ])  # fmt: skip

    # --- auth and errors ---

    def _check_key(self, request: Request, scheme: str, expected: str) -> None:
        key = scheme_token(request, scheme)
        if key is None or not same(key, expected):
            message = f"a valid 'Authorization: {scheme} <key>' header is required"
            raise ApiError(401, message, {"Authorization": message}, reason="unauthorized")

    def _integration_auth(self, request: Request) -> None:
        self._check_key(request, "ApiKey-v1", self.config.integration_key)

    def _management_auth(self, request: Request) -> None:
        self._check_key(request, "ManagementKey-v1", self.config.management_key)

    def _render_error(self, request: Request, err: ApiError) -> JSONResponse:
        title = HTTPStatus(err.status).phrase
        items = err.fields.items() or [("", err.message)]
        # A body field is a JSON pointer ("" = the whole request); anything else names a parameter or header.
        source = lambda f: {"pointer" if not f or f.startswith("/") else "parameter": f}  # noqa: E731
        errors = [{"title": title, "details": message, "source": source(f)} for f, message in items]
        return JSONResponse({"message": err.message, "errors": errors}, err.status)

    # --- shared pieces ---

    def _attribute_problems(self, attributes: Any, pointer: str) -> dict[str, str]:
        if attributes is None:
            return {}
        if not isinstance(attributes, dict):
            return {pointer: "attributes must be an object"}
        defined = self.state.attributes.get("CustomerProfile", {})
        problems = {}
        for name, value in attributes.items():
            spec = defined.get(name)
            if spec is None:
                problems[f"{pointer}/{name}"] = f"attribute {name!r} is not defined for CustomerProfile"
            elif not _type_ok(spec["type"], value):
                problems[f"{pointer}/{name}"] = f"attribute {name!r} must be of type {spec['type']}"
        return problems

    def _check_audiences(self, ids: dict[str, int]) -> None:
        """404 for audience ids (by JSON pointer) that do not exist."""
        missing = {p: f"audience {i} does not exist" for p, i in ids.items() if i not in self.state.audiences}
        if missing:
            raise _invalid(missing, 404)

    def _profile_json(self, integration_id: str, profile: dict[str, Any]) -> dict[str, Any]:
        memberships = [
            {"id": a["id"], "name": a["name"]} for a in self.state.audiences.values() if integration_id in a["members"]
        ]
        return {
            "id": profile["id"],
            "created": profile["created"],
            "integrationId": integration_id,
            "attributes": profile["attributes"],
            "accountId": self.config.account_id,
            "closedSessions": 0,
            "totalSales": 0.0,
            "lastActivity": profile["created"],
            "audienceMemberships": memberships,
        }

    @staticmethod
    def _flag(request: Request, name: str) -> bool:
        value = request.query_params.get(name, "false").lower()
        if value not in ("true", "false"):
            raise ApiError(400, f"{name} must be true or false", {name: "must be true or false"})
        return value == "true"

    @staticmethod
    def _audience_json(audience: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in audience.items() if k != "members"}

    def _audience(self, request: Request) -> dict[str, Any]:
        raw = request.path_params["audienceId"]
        audience = self.state.audiences.get(int(raw)) if raw.isdigit() else None
        if audience is None:
            raise ApiError(404, f"audience {raw} does not exist", {"": "no such audience"}, reason="not_found")
        return audience

    # --- profiles ---

    async def update_profile(self, request: Request) -> JSONResponse:
        integration_id = request.path_params["integrationId"]
        run, dry = self._flag(request, "runRuleEngine"), self._flag(request, "dry")
        body = await json_body(request)
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object", {"": "must be a JSON object"})
        problems = _field_problems(body, PROFILE_V2)
        if not _valid_id(integration_id):
            problems["integrationId"] = "integrationId must be 1 to 1000 characters"
        if dry and not run:
            problems["dry"] = "dry only works with runRuleEngine=true"
        if "responseContent" in body and not run:
            problems["/responseContent"] = "responseContent needs runRuleEngine=true"
        if "evaluableCampaignIds" in body and not dry:
            problems["/evaluableCampaignIds"] = "evaluableCampaignIds needs dry=true"
        if "/attributes" not in problems:
            problems.update(self._attribute_problems(body.get("attributes"), "/attributes"))
        if problems:
            raise _invalid(problems)
        changes = body.get("audiencesChanges") or {"adds": [], "deletes": []}
        self._check_audiences({
            f"/audiencesChanges/{k}/{n}": i for k in ("adds", "deletes") for n, i in enumerate(changes[k])
        })  # fmt: skip
        attributes = body.get("attributes") or {}
        if dry:  # evaluate, persist nothing
            current = self.state.profiles.get(integration_id, {"id": 0, "created": utc_now(), "attributes": {}})
            profile = {**current, "attributes": {**current["attributes"], **attributes}}
        else:
            profile = self.state.profile(integration_id)
            profile["attributes"].update(attributes)
            for audience_id in changes["adds"]:
                self.state.audiences[audience_id]["members"].add(integration_id)
            for audience_id in changes["deletes"]:
                self.state.audiences[audience_id]["members"].discard(integration_id)
        return JSONResponse({"customerProfile": self._profile_json(integration_id, profile), "effects": []})

    async def update_profiles(self, request: Request) -> Response:
        silent = request.query_params.get("silent", "yes")
        if silent not in ("yes", "no"):
            raise ApiError(400, "silent must be yes or no", {"silent": "must be yes or no"})
        body = await json_body(request)
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
                problems.update(self._attribute_problems(item.get("attributes"), f"{pointer}/attributes"))
        if problems:
            raise _invalid(problems)
        for item in items:
            self.state.profile(item["integrationId"])["attributes"].update(item.get("attributes") or {})
        if silent == "yes":
            return Response(status_code=204)
        states = [
            {"customerProfile": self._profile_json(i["integrationId"], self.state.profiles[i["integrationId"]])}
            for i in items
        ]
        return JSONResponse({"integrationStates": states})

    # --- audiences ---

    async def create_audience(self, request: Request) -> JSONResponse:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object", {"": "must be a JSON object"})
        problems = _field_problems(body, NEW_AUDIENCE)
        if problems:
            raise _invalid(problems)
        integration_id, integration = body.get("integrationId"), body.get("integration")
        if integration_id is not None and any(
            a.get("integrationId") == integration_id and a.get("integration") == integration
            for a in self.state.audiences.values()
        ):
            raise ApiError(409, "an audience with this integrationId already exists", {"/integrationId": "taken"})
        audience_id = self.state.next_audience
        self.state.next_audience += 1
        audience = {"id": audience_id, "accountId": self.config.account_id, "created": utc_now(), "sandbox": False}
        audience.update(body, members=set())
        self.state.audiences[audience_id] = audience
        return JSONResponse(self._audience_json(audience), 201)

    async def delete_audience(self, request: Request) -> Response:
        del self.state.audiences[self._audience(request)["id"]]
        return Response(status_code=204)

    async def clear_audience(self, request: Request) -> Response:
        self._audience(request)["members"].clear()
        return Response(status_code=204)

    async def change_audiences(self, request: Request) -> Response:
        body = await json_body(request)
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
        self._check_audiences({f"/data/{n}/audienceId": item["audienceId"] for n, item in enumerate(data)})
        for item in data:
            members = self.state.audiences[item["audienceId"]]["members"]
            if item["action"] == "add":
                self.state.profile(item["profileIntegrationId"], hidden=True)
                members.add(item["profileIntegrationId"])
            else:
                members.discard(item["profileIntegrationId"])
        return Response(status_code=204)

    # --- management ---

    @staticmethod
    def _page(request: Request, data: list[dict[str, Any]]) -> JSONResponse:
        """One page of a Management API list (pageSize 1 to 1000, default 1000; skip)."""
        size, skip = request.query_params.get("pageSize", "1000"), request.query_params.get("skip", "0")
        if not (size.isdigit() and 1 <= int(size) <= MAX_ITEMS):
            raise ApiError(400, "pageSize must be an integer from 1 to 1000", {"pageSize": "1 to 1000"})
        if not skip.isdigit():
            raise ApiError(400, "skip must be a non-negative integer", {"skip": "a non-negative integer"})
        return JSONResponse({"totalResultSize": len(data), "data": data[int(skip) : int(skip) + int(size)]})

    async def list_attributes(self, request: Request) -> JSONResponse:
        return self._page(request, [a for by_name in self.state.attributes.values() for a in by_name.values()])

    async def create_attribute(self, request: Request) -> JSONResponse:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object", {"": "must be a JSON object"})
        problems = _field_problems(body, NEW_ATTRIBUTE)
        if problems:
            raise _invalid(problems)
        same_entity = self.state.attributes.setdefault(body["entity"], {})
        if body["name"] in same_entity or any(a["title"] == body["title"] for a in same_entity.values()):
            message = "an attribute with this name or title already exists for this entity"
            raise ApiError(409, message, {"/name": "taken"})
        attribute = {
            "id": self.state.next_attribute,
            "created": utc_now(),
            "accountId": self.config.account_id,
            "entity": body["entity"],
            "name": body["name"],
            "title": body["title"],
            "type": body["type"],
            "description": body["description"],
            "suggestions": body["suggestions"],
            "editable": body["editable"],
        }
        self.state.next_attribute += 1
        same_entity[body["name"]] = attribute
        return JSONResponse(attribute, 201)

    async def list_audiences(self, request: Request) -> JSONResponse:
        return self._page(request, [self._audience_json(a) for a in self.state.audiences.values()])


def create_app(config: TalonOneConfig) -> Starlette:
    return TalonOne(config).app()
