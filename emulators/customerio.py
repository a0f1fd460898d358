"""Customer.io emulator: Track API v1/v2, manual segment membership, and the App API segment routes.

One app serves the Track and App routes (locally both base URLs point at the same port). The contract is
/work/shared/destinations.md §1 and §6 "Customer.io emulator". Choices where the vendor is silent:

- v2 (`/api/v2/entity`, `/api/v2/batch`): anything the sync engine can get wrong in one entry (identifiers,
  oversized names or values, more than 300 attributes, non-integer timestamps, event ids that are not
  ULIDs) is an error for that entry: 400 for entity, a `batch_index` item in a 207 for batch. A batch over
  500 KB is refused whole with 413; an entry over 32 KB (compact JSON) fails alone; an empty batch is 400.
- v1 identify answers like the vendor: oversized attributes are dropped with a recorded attribute update
  failure and 200 (`reject_oversized_v1=True` makes them 400). Non-integer `created_at`/`_timestamp` are 400.
- Problems only the stored state reveals (an identifier owned by someone else, a suppressed identifier,
  `_update` with no match, more than 300 attributes on the person) are 2xx plus a recorded attribute update
  failure, as the vendor logs them in the activity log. See `attribute_failures` in `/_emulator/state`.
- `""` and `null` clear a person attribute. `timestamp`/`_timestamp` older than the person's last applied
  update are ignored (ordering is per person, not per attribute).
- Segment membership changes skip people that do not exist (nobody is created) and values of the wrong
  `id_type`; segment names need not be unique, as setup must look segments up before creating them.
- The account has one region; requests to the other region's vendor host name (Host header) fail with 401
  for a US account, and an EU account on the US host is accepted and counted in the `flags` stats.
"""

from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from .api import ApiError, Endpoint, basic_credentials, json_body, json_size, same, scheme_token
from .base import Emulator, EmulatorConfig
from .customerio_people import People
from .customerio_state import CustomerIOState, cleared
from .customerio_validation import (
    MAX_ATTRIBUTES,
    MAX_BATCH_BYTES,
    MAX_ENTITY_BYTES,
    PERSON_ACTIONS,
    attribute_problems,
    check_delivery,
    check_event,
    check_timestamp,
    identify_attributes,
    merge_party,
    new_segment,
    object_attributes,
    object_key,
    path_identifier,
    segment_ids,
    v2_identifier,
)
from .rate_limit import RateLimit
from .tracked import TrackedSet

HOSTS = {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"}


@dataclass(kw_only=True)
class CustomerIOConfig(EmulatorConfig):
    site_id: str = field(repr=False)
    track_api_key: str = field(repr=False)
    app_api_key: str = field(repr=False)
    region: str = "us"
    port: int = 8701
    # Track: 100 rps per workspace, the conservative documented figure; App API: 10 rps.
    rate_limits: dict[str, RateLimit] = field(
        default_factory=lambda: {"track": RateLimit(100), "app": RateLimit(10)}
    )
    reject_oversized_v1: bool = False
    allow_email_update_by_id: bool = False  # the workspace setting "Allow updates to email using ID"


class CustomerIO:
    def __init__(self, config: CustomerIOConfig):
        if config.region not in HOSTS:
            raise ValueError("region must be 'us' or 'eu'")
        self.config = config
        self.state = CustomerIOState()
        self.api = Emulator(
            config, self.state, {"track": self._track_auth, "app": self._app_auth}, self._render_error
        )
        self.people = People(self.state, self.api.stats, config.allow_email_update_by_id)

    def app(self) -> Starlette:
        T, A = "track", "app"
        ids = lambda body: len(body["ids"])  # noqa: E731
        return self.api.app([
            Endpoint("GET", "/api/v1/accounts/region", self.region, T, T),
            Endpoint("PUT", "/api/v1/customers/{identifier}", self.identify_v1, T, T),
            Endpoint("DELETE", "/api/v1/customers/{identifier}", self.delete_v1, T, T),
            Endpoint("POST", "/api/v1/customers/{identifier}/events", self.event_v1, T, T),
            Endpoint("POST", "/api/v1/customers/{identifier}/suppress", self.suppress_v1, T, T),
            Endpoint("POST", "/api/v1/customers/{identifier}/unsuppress", self.unsuppress_v1, T, T),
            Endpoint("POST", "/api/v1/segments/{segment_id}/add_customers", self.add_customers, T, T, items=ids),
            Endpoint("POST", "/api/v1/segments/{segment_id}/remove_customers", self.remove_customers, T, T, items=ids),
            Endpoint("POST", "/api/v2/entity", self.entity, T, T, items=lambda body: 1),
            Endpoint("POST", "/api/v2/batch", self.batch, T, T, items=lambda body: len(body["batch"])),
            Endpoint("POST", "/v1/segments", self.create_segment, A, A),
            Endpoint("GET", "/v1/segments", self.list_segments, A, A),
            Endpoint("GET", "/v1/segments/{segment_id}", self.get_segment, A, A),
        ])  # fmt: skip

    # --- auth and errors ---

    def _track_auth(self, request: Request) -> None:
        creds = basic_credentials(request)
        if creds is None or not (same(creds[0], self.config.site_id) and same(creds[1], self.config.track_api_key)):
            raise ApiError(401, "Unauthorized", reason="unauthorized")
        self._check_region(request)

    def _app_auth(self, request: Request) -> None:
        token = scheme_token(request, "Bearer")
        if token is None or not same(token, self.config.app_api_key):
            raise ApiError(401, "Unauthorized", reason="unauthorized")
        self._check_region(request)

    def _check_region(self, request: Request) -> None:
        host = request.headers.get("host", "").partition(":")[0]
        if not host.endswith(".customer.io"):
            return  # loopback or a test host name: the account's own region
        host_region = "eu" if host.split(".")[0].endswith("-eu") else "us"
        if host_region == self.config.region:
            return
        if self.config.region == "us":
            raise ApiError(401, "Unauthorized", reason="unauthorized")  # the EU region does not know this account
        self.api.stats.flags["eu_account_on_us_host"] += 1  # the vendor redirects; the data transits the US

    def _render_error(self, request: Request, err: ApiError) -> JSONResponse:
        if err.status == 401:
            body: dict[str, Any] = {"meta": {"error": "Unauthorized"}}
        elif request.url.path.startswith("/api/v2/"):
            items = err.fields.items() or [("", err.message)]
            body = {"errors": [{"reason": err.reason, "field": f, "message": err.message} for f, _ in items]}
        else:
            body = {"meta": {"errors": [f"{f}: {m}" for f, m in err.fields.items()] or [err.message]}}
        return JSONResponse(body, err.status)

    # --- v1 routes ---

    async def region(self, request: Request) -> JSONResponse:
        return JSONResponse({"url": HOSTS[self.config.region], "region": self.config.region, "environment_id": 1})

    async def identify_v1(self, request: Request) -> JSONResponse:
        kind, value = path_identifier(request.path_params["identifier"])
        body = await json_body(request) or {}
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object of attributes")
        check_timestamp(body.get("created_at"), "created_at")
        timestamp = body.pop("_timestamp", None)
        check_timestamp(timestamp, "_timestamp")
        update_only = body.pop("_update", False) is True
        problems = attribute_problems(body)
        if len(body) > MAX_ATTRIBUTES:
            problems[""] = "more than 300 attributes in one call"
        if problems and self.config.reject_oversized_v1:
            raise ApiError(400, "attributes over the documented limits", problems, reason="too_large")
        for name, problem in problems.items():
            self.people.fail(kind, value, f"{name}: {problem}")
        if "" not in problems:
            attributes = {n: v for n, v in body.items() if n not in problems}
            self.people.identify(kind, value, attributes, timestamp, update_only)
        return JSONResponse({})

    async def delete_v1(self, request: Request) -> JSONResponse:
        self.people.delete(*path_identifier(request.path_params["identifier"]))
        return JSONResponse({})

    async def event_v1(self, request: Request) -> JSONResponse:
        path_identifier(request.path_params["identifier"])
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object")
        check_event(body.get("name"), body.get("data"), "data")
        check_timestamp(body.get("timestamp"), "timestamp")
        self.people.event(body["name"], body.get("id"), request.path_params["identifier"], body.get("timestamp"),
                          body.get("data"))
        return JSONResponse({})

    async def suppress_v1(self, request: Request) -> JSONResponse:
        self.people.suppress(*path_identifier(request.path_params["identifier"]))
        return JSONResponse({})

    async def unsuppress_v1(self, request: Request) -> JSONResponse:
        self.people.unsuppress(*path_identifier(request.path_params["identifier"]))
        return JSONResponse({})

    # --- v2 routes ---

    async def entity(self, request: Request) -> JSONResponse:
        if len(await request.body()) > MAX_ENTITY_BYTES:
            raise ApiError(400, "request is larger than 32 KB", {"body": "too large"}, reason="too_large")
        self.people.fresh = set()
        self._apply(await json_body(request))
        return JSONResponse({})

    async def batch(self, request: Request) -> JSONResponse:
        size = len(await request.body())
        if size > MAX_BATCH_BYTES:
            raise ApiError(413, "batch request is larger than 500 KB", {"batch": "too large"}, reason="too_large")
        body = await json_body(request)
        entries = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not entries:
            raise ApiError(400, 'body must be {"batch": [...]} with at least one entry', {"batch": "invalid"})
        errors = []
        self.people.fresh = set()
        could_be_oversized = size > MAX_ENTITY_BYTES  # otherwise no entry can pass 32 KB: skip re-encoding
        for index, entry in enumerate(entries):
            try:
                if could_be_oversized and json_size(entry) > MAX_ENTITY_BYTES:
                    raise ApiError(400, "entry is larger than 32 KB", {"batch": "too large"}, reason="too_large")
                self._apply(entry)
            except ApiError as err:
                f = next(iter(err.fields), "")
                errors.append({"batch_index": index, "reason": err.reason, "field": f, "message": err.message})
        if not errors:
            return JSONResponse({})
        return JSONResponse({"errors": errors}, 400 if len(errors) == len(entries) else 207)

    def _apply(self, entry: Any) -> None:
        """Validate one v2 operation completely, then apply it."""
        if not isinstance(entry, dict):
            raise ApiError(400, "an operation must be a JSON object", {"type": "invalid"})
        kind = entry.get("type")
        if kind == "person":
            self._person(entry)
        elif kind == "object":
            self._object(entry)
        elif kind == "delivery":
            self._delivery(entry)
        else:
            raise ApiError(400, "type must be person, object or delivery", {"type": "invalid"})

    def _person(self, entry: dict[str, Any]) -> None:
        action = entry.get("action")
        if action not in PERSON_ACTIONS:
            raise ApiError(400, f"action {action!r} is not valid for a person", {"action": "invalid"})
        if action == "merge":  # person_merge: primary and secondary instead of identifiers
            self.people.merge(merge_party(entry.get("primary"), "primary"),
                              merge_party(entry.get("secondary"), "secondary"))
            return
        kind, value = v2_identifier(entry.get("identifiers"))
        timestamp = entry.get("timestamp")
        check_timestamp(timestamp, "timestamp")
        if action == "identify":
            attributes = identify_attributes(entry)
            update_only = attributes.pop("_update", False) is True
            self.people.identify(kind, value, attributes, timestamp, update_only)
        elif action == "delete":
            self.people.delete(kind, value)
        elif action == "suppress":
            self.people.suppress(kind, value)
        elif action == "unsuppress":
            self.people.unsuppress(kind, value)
        elif action in ("event", "screen", "page"):
            check_event(entry.get("name"), entry.get("attributes"), "attributes")
            self.people.event(entry["name"] if action == "event" else f"{action}:{entry['name']}", entry.get("id"),
                              value, timestamp, entry.get("attributes"))
        else:
            self.api.stats.flags[f"person_{action}_not_modelled"] += 1  # accepted; no state for it here

    def _object(self, entry: dict[str, Any]) -> None:
        key = object_key(entry)
        action = entry["action"]
        if action == "identify":
            attributes = object_attributes(entry)
            stored = self.state.objects.setdefault(key, {})
            for name, v in attributes.items():
                if cleared(v):
                    stored.pop(name, None)
                else:
                    stored[name] = v
        elif action == "delete":
            self.state.objects.pop(key, None)
        else:
            self.api.stats.flags[f"object_{action}_not_modelled"] += 1

    def _delivery(self, entry: dict[str, Any]) -> None:
        check_delivery(entry)
        self.state.events[f"delivery:{entry['name']}"] += 1

    # --- segments ---

    def _segment(self, request: Request) -> dict[str, Any]:
        segment_id = request.path_params["segment_id"]
        segment = self.state.segments.get(int(segment_id)) if segment_id.isdigit() else None
        if segment is None:
            raise ApiError(404, "segment not found", reason="not_found")
        return segment

    async def _change_membership(self, request: Request, add: bool) -> JSONResponse:
        segment = self._segment(request)
        id_type = request.query_params.get("id_type", "id")
        ids = segment_ids(id_type, await json_body(request))
        members = segment["members"]
        for value in ids:
            cio_id = self.state.find(id_type, value)
            if cio_id is None:
                self.api.stats.flags["segment_ids_unmatched"] += 1
            elif add:
                members.add(cio_id)
            elif "id" in self.state.people[cio_id]:  # removal only works for people who have an id
                members.discard(cio_id)
        return JSONResponse({})

    async def add_customers(self, request: Request) -> JSONResponse:
        return await self._change_membership(request, add=True)

    async def remove_customers(self, request: Request) -> JSONResponse:
        return await self._change_membership(request, add=False)

    @staticmethod
    def _segment_json(segment: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in segment.items() if k != "members"}

    async def create_segment(self, request: Request) -> JSONResponse:
        name, description = new_segment(await json_body(request))
        segment_id = self.state.next_segment
        self.state.next_segment += 1
        segment = {"id": segment_id, "name": name, "description": description, "type": "manual"}
        segment["members"] = TrackedSet()
        self.state.segments[segment_id] = segment
        return JSONResponse({"segment": self._segment_json(segment)})

    async def list_segments(self, request: Request) -> JSONResponse:
        return JSONResponse({"segments": [self._segment_json(s) for s in self.state.segments.peek_values()]})

    async def get_segment(self, request: Request) -> JSONResponse:
        return JSONResponse({"segment": self._segment_json(self._segment(request))})


def create_app(config: CustomerIOConfig) -> Starlette:
    return CustomerIO(config).app()
