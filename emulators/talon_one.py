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
  NewAudience, CustomerProfileIntegrationRequestV2, ...; written out in talon_one_validation, as the product
  does not depend on the SDK): a missing required field, a wrong type or an unknown key is 400. Nothing is
  filled in.
- Unknown audience ids (in `audiencesChanges` or `customer_audiences`) are 404; empty `customerProfiles`
  or `data` lists are 400 like 1001-item ones.
- `dry` without `runRuleEngine=true` is 400 rather than silently ignored. No rules exist here, so
  `effects` is always empty.
- A request whose profile ids overlap another in-flight request's gets 409 (base.Emulator claims).
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .api import ApiError, Endpoint, json_body, same, scheme_token
from .base import Emulator, EmulatorConfig
from .rate_limit import RateLimit
from .tracked import TrackedSet
from .talon_one_state import TalonOneState
from .talon_one_validation import (
    MAX_ITEMS,
    audience_actions,
    custom_event,
    new_attribute,
    new_audience,
    profile_items,
    profile_update,
    type_ok,
    valid_id,
)


@dataclass(kw_only=True)
class TalonOneConfig(EmulatorConfig):
    integration_key: str = field(repr=False)
    management_key: str = field(repr=False)
    port: int = 8703
    account_id: int = 1
    application_id: int = 1  # the Application the integration key belongs to
    # Integration API: no published number; ~300 rps is the partner figure. Management: ~3 rps per endpoint.
    rate_limits: dict[str, RateLimit] = field(
        default_factory=lambda: {"integration": RateLimit(300), "management": RateLimit(3, per_route=True)}
    )


def _profile_id(request: Request, body: Any) -> list[str]:
    return [request.path_params["integrationId"]]


def _profile_ids(request: Request, body: Any) -> list[str]:
    """Integration ids a bulk profile request touches; tolerant, since validation comes later."""
    items = body.get("customerProfiles") if isinstance(body, dict) else None
    return [i["integrationId"] for i in items or () if isinstance(i, dict) and valid_id(i.get("integrationId"))]


def _event_profile_id(request: Request, body: Any) -> list[str]:
    profile = body.get("profileId") if isinstance(body, dict) else None
    return [profile] if valid_id(profile) else []


def _audience_profile_ids(request: Request, body: Any) -> list[str]:
    items = body.get("data") if isinstance(body, dict) else None
    key = "profileIntegrationId"
    return [i[key] for i in items or () if isinstance(i, dict) and valid_id(i.get(key))]


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
            Endpoint("GET", "/v1/customer_profiles/{integrationId}/inventory", self.inventory, I, I),
            Endpoint("PUT", "/v2/customer_profiles", self.update_profiles, I, I,
                     claims=_profile_ids, items=lambda body: len(body["customerProfiles"])),
            Endpoint("POST", "/v2/audiences", self.create_audience, I, I),
            Endpoint("DELETE", "/v2/audiences/{audienceId}", self.delete_audience, I, I),
            Endpoint("DELETE", "/v2/audiences/{audienceId}/memberships", self.clear_audience, I, I),
            Endpoint("POST", "/v2/customer_audiences", self.change_audiences, I, I,
                     claims=_audience_profile_ids, items=lambda body: len(body["data"])),
            Endpoint("POST", "/v2/events", self.track_event, I, I, claims=_event_profile_id, items=lambda body: 1),
            Endpoint("GET", "/v1/attributes", self.list_attributes, M, M),
            Endpoint("POST", "/v1/attributes", self.create_attribute, M, M),
            Endpoint("GET", "/v1/audiences", self.list_audiences, M, M),
            Endpoint("GET", "/v1/applications/{applicationId}/events/no_total", self.list_events, M, M),
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

    def _profile_json(self, integration_id: str, profile: dict[str, Any]) -> dict[str, Any]:
        memberships = [
            {"id": a["id"], "name": a["name"]} for a in self.state.audiences.peek_values() if integration_id in a["members"]
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
        attributes, changes = profile_update(body, integration_id, run, dry, self.state)
        if dry:  # evaluate, persist nothing
            profile = self.state.preview_profile(integration_id, attributes)
        else:
            profile = self.state.update_profile(integration_id, attributes, changes)
        return JSONResponse({"customerProfile": self._profile_json(integration_id, profile), "effects": []})

    async def inventory(self, request: Request) -> JSONResponse:
        """CustomerInventory of one profile (only its profile is kept here: the lists are empty); 404 for an
        unknown one, as the vendor documents."""
        integration_id = request.path_params["integrationId"]
        flags = {name: self._flag(request, name)
                 for name in ("profile", "referrals", "coupons", "loyalty", "giveaways", "achievements")}
        profile = self.state.profiles.get(integration_id)
        if profile is None:
            raise ApiError(404, f"customer profile {integration_id} does not exist", {"": "no such profile"},
                           reason="not_found")
        inventory = {name: [] for name in ("referrals", "coupons", "giveaways", "achievements") if flags[name]}
        if flags["profile"]:
            inventory["profile"] = self._profile_json(integration_id, profile)
        return JSONResponse(inventory)

    async def update_profiles(self, request: Request) -> Response:
        silent = request.query_params.get("silent", "yes")
        if silent not in ("yes", "no"):
            raise ApiError(400, "silent must be yes or no", {"silent": "must be yes or no"})
        items = profile_items(await json_body(request), self.state)
        for item in items:
            self.state.profile(item["integrationId"])["attributes"].update(item.get("attributes") or {})
        if silent == "yes":
            return Response(status_code=204)
        states = [
            {"customerProfile": self._profile_json(i["integrationId"], self.state.profiles[i["integrationId"]])}
            for i in items
        ]
        return JSONResponse({"integrationStates": states})

    # --- custom events (no id: a repeat is a second event) ---

    async def track_event(self, request: Request) -> JSONResponse:
        event = self.state.add_event(custom_event(await json_body(request), self.state))
        profile = event["profileId"]
        if profile:
            self.state.profile(profile)
        state = {"event": {**event, "applicationId": self.config.application_id, "effects": []}, "effects": []}
        if profile:
            state["customerProfile"] = self._profile_json(profile, self.state.profiles[profile])
        return JSONResponse(state)

    # --- audiences ---

    async def create_audience(self, request: Request) -> JSONResponse:
        body = new_audience(await json_body(request), self.state)
        audience = self.state.add_audience(body, self.config.account_id)
        return JSONResponse(self._audience_json(audience), 201)

    async def delete_audience(self, request: Request) -> Response:
        del self.state.audiences[self._audience(request)["id"]]
        return Response(status_code=204)

    async def clear_audience(self, request: Request) -> Response:
        self._audience(request)["members"] = TrackedSet()
        return Response(status_code=204)

    async def change_audiences(self, request: Request) -> Response:
        self.state.change_memberships(audience_actions(await json_body(request), self.state))
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
        body = new_attribute(await json_body(request), self.state)
        return JSONResponse(self.state.add_attribute(body, self.config.account_id), 201)

    async def list_events(self, request: Request) -> JSONResponse:
        """The Application's events, oldest first, filtered by profile, type and creation time (RFC 3339)."""
        if request.path_params["applicationId"] != str(self.config.application_id):
            raise ApiError(404, "application not found", {"applicationId": "no such application"})
        query = request.query_params
        after = query.get("createdAfter")
        if after is not None and not type_ok("time", after):
            raise ApiError(400, "createdAfter must be an RFC 3339 time", {"createdAfter": "an RFC 3339 time"})
        events = [{**e, "applicationId": self.config.application_id, "effects": []} for e in self.state.events
                  if query.get("profile") in (None, e["profileId"]) and query.get("type") in (None, e["type"])
                  and (after is None or _moment(e["created"]) > _moment(after))]
        page = self._page(request, events)
        body = json.loads(page.body)
        return JSONResponse({"hasMore": body["totalResultSize"] > int(query.get("skip", "0")) + len(body["data"]),
                             "data": body["data"]})

    async def list_audiences(self, request: Request) -> JSONResponse:
        return self._page(request, [self._audience_json(a) for a in self.state.audiences.peek_values()])


def create_app(config: TalonOneConfig) -> Starlette:
    return TalonOne(config).app()


def _moment(value: str) -> datetime:
    """An RFC 3339 time, comparable whatever its offset."""
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
