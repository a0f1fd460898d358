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

import re
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from .base import (
    ApiError,
    Emulator,
    EmulatorConfig,
    Endpoint,
    RateLimit,
    basic_credentials,
    json_body,
    json_size,
    same,
    scheme_token,
)

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


def _key(kind: str, value: str) -> str:
    """Index key of an identifier; emails compare case-insensitively."""
    return f"{kind}:{value.lower() if kind == 'email' else value}"


class CustomerIOState:
    """People, manual segments and objects of one workspace."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        # A person is {"attributes": {...}} plus whichever of id/email/phone it has and "ts", the
        # timestamp of its last ordered update; kept JSON-ready so state dumps need no copying.
        self.people: dict[str, dict[str, Any]] = {}  # by cio_id
        self.index: dict[str, str] = {}  # _key(kind, value) -> cio_id
        self.segments: dict[int, dict[str, Any]] = {}  # members is a set of cio_ids
        self.objects: dict[str, dict[str, Any]] = {}  # "<object_type_id>:<object_id>" -> attributes
        self.suppressed: dict[str, list[str]] = {}  # identifier key -> every key suppressed with it
        self.event_ids: set[str] = set()  # ULIDs seen, for deduplication
        self.events: Counter[str] = Counter()  # accepted events by name
        self.failures: deque[dict[str, str]] = deque(maxlen=1000)  # attribute update failures, latest last
        self.next_person = 1
        self.next_segment = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "people": self.people,
            "segments": {str(i): {**s, "members": sorted(s["members"])} for i, s in self.segments.items()},
            "objects": self.objects,
            "suppressed": sorted({tuple(group) for group in self.suppressed.values()}),
            "event_ids": list(self.event_ids),
            "events": dict(self.events),
            "attribute_failures": list(self.failures),
            "next_person": self.next_person,
            "next_segment": self.next_segment,
        }

    def load(self, data: dict[str, Any]) -> None:
        self.clear()
        self.people = data["people"]
        for cio_id, person in self.people.items():
            for kind in ("id", "email", "phone"):
                if kind in person:
                    self.index[_key(kind, person[kind])] = cio_id
        self.segments = {int(i): {**s, "members": set(s["members"])} for i, s in data["segments"].items()}
        self.objects = data["objects"]
        for group in data["suppressed"]:
            for key in group:
                self.suppressed[key] = list(group)
        self.event_ids = set(data["event_ids"])
        self.events = Counter(data["events"])
        self.failures.extend(data["attribute_failures"])
        self.next_person = data["next_person"]
        self.next_segment = data["next_segment"]

    def find(self, kind: str, value: str) -> str | None:
        if kind == "cio_id":
            return value if value in self.people else None
        return self.index.get(_key(kind, value))

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
            del self.index[_key(kind, person[kind])]
        person[kind] = value
        self.index[_key(kind, value)] = cio_id

    def delete(self, cio_id: str) -> dict[str, Any]:
        person = self.people.pop(cio_id)
        for kind in ("id", "email", "phone"):
            if kind in person:
                del self.index[_key(kind, person[kind])]
        for segment in self.segments.values():
            segment["members"].discard(cio_id)
        return person

    def is_suppressed(self, kind: str, value: str) -> bool:
        return _key(kind, value) in self.suppressed


def _path_identifier(value: str) -> tuple[str, str]:
    """The v1 path identifier's kind, worked out from its shape as the vendor does."""
    if len(value.encode()) > MAX_ID_BYTES:
        raise ApiError(400, "identifier is longer than 150 bytes", {"identifier": "longer than 150 bytes"})
    if value.startswith("cio_"):
        return "cio_id", value[4:]
    return ("email" if "@" in value else "id"), value


def _v2_identifier(identifiers: Any) -> tuple[str, str]:
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


def _check_timestamp(value: Any, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ApiError(400, f"{name} must be an integer Unix timestamp", {name: "not an integer"}, reason="not_integer")


def _check_reserved(attributes: dict[str, Any], entry: dict[str, Any]) -> None:
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


def _value_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, dict | list):
        return json_size(value)
    return len(str(value))  # numbers and booleans: no need to run the JSON encoder


def _attribute_problems(attributes: dict[str, Any]) -> dict[str, str]:
    """Attributes over the documented name/value limits, by name."""
    problems = {}
    for name, value in attributes.items():
        if len(name.encode()) > MAX_NAME_BYTES:
            problems[name] = "attribute name is longer than 150 bytes"
        elif value is not None and _value_bytes(value) > MAX_VALUE_BYTES:
            problems[name] = "attribute value is longer than 1000 bytes"
    return problems


def _cleared(value: Any) -> bool:
    return value is None or value == ""


class CustomerIO:
    def __init__(self, config: CustomerIOConfig):
        if config.region not in HOSTS:
            raise ValueError("region must be 'us' or 'eu'")
        self.config = config
        self.state = CustomerIOState()
        self.api = Emulator(
            config, self.state, {"track": self._track_auth, "app": self._app_auth}, self._render_error
        )

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

    def _fail(self, kind: str, value: str, reason: str) -> None:
        """What the vendor shows as an attribute update failure in the activity log (the request got 2xx)."""
        self.state.failures.append({"identifier": _key(kind, value), "reason": reason})
        self.api.stats.flags["attribute_update_failures"] += 1

    # --- people ---

    def _identify(
        self,
        kind: str,
        value: str,
        attributes: dict[str, Any],
        timestamp: int | None = None,
        update_only: bool = False,
    ) -> None:
        s = self.state
        if s.is_suppressed(kind, value):
            return self._fail(kind, value, "identifier is suppressed")
        body_ids = {k: attributes.pop(k) for k in ("id", "email", "phone") if k in attributes}
        body_ids = {k: v for k, v in body_ids.items() if isinstance(v, str) and v}
        cio_id = s.find(kind, value)
        found_by_path = cio_id is not None
        if cio_id is None:
            # An unknown path identifier with a known body identifier updates that person (vendor rule).
            cio_id = next((c for k, v in body_ids.items() if (c := s.find(k, v))), None)
        if cio_id is None and (update_only or kind == "cio_id"):
            return self._fail(kind, value, "no person matches and nobody is created")
        # A new person is only stored once every check has passed.
        person = s.people[cio_id] if cio_id is not None else {"attributes": {}}
        if timestamp is not None and timestamp < person.get("ts", timestamp):
            self.api.stats.flags["stale_updates_ignored"] += 1
            return
        wanted = {**body_ids, **({} if kind == "cio_id" else {kind: value})}
        for k, v in wanted.items():
            owner = s.find(k, v)
            if owner is not None and owner != cio_id:
                return self._fail(kind, value, f"{k} belongs to another person")
            current = person.get(k)
            changeable = (
                kind == "cio_id"
                or (k == "email" and self.config.allow_email_update_by_id)
                or (k == kind and not found_by_path)
            )
            if current is not None and _key(k, current) != _key(k, v) and not changeable:
                return self._fail(kind, value, f"changing {k} needs the person addressed by cio_id")
        stored = person["attributes"]
        if len(stored) + len(attributes) > MAX_ATTRIBUTES:  # only then can the person pass the limit
            added = sum(1 for n, v in attributes.items() if not _cleared(v) and n not in stored)
            removed = sum(1 for n, v in attributes.items() if _cleared(v) and n in stored)
            if len(stored) + added - removed > MAX_ATTRIBUTES:
                return self._fail(kind, value, "a person may hold at most 300 attributes")
        if cio_id is None:
            cio_id = s.create()
            person = s.people[cio_id]
            stored = person["attributes"]
        for k, v in wanted.items():
            if k not in person or _key(k, person[k]) != _key(k, v):
                s.set_identifier(cio_id, k, v)
        for name, v in attributes.items():
            if _cleared(v):
                stored.pop(name, None)
            else:
                stored[name] = v
        if timestamp is not None:
            person["ts"] = timestamp

    def _delete(self, kind: str, value: str) -> None:
        cio_id = self.state.find(kind, value)
        if cio_id is not None:
            self.state.delete(cio_id)

    def _suppress(self, kind: str, value: str) -> None:
        """Suppressing deletes the person and keeps their identifiers from being added back."""
        cio_id = self.state.find(kind, value)
        person = self.state.delete(cio_id) if cio_id is not None else {}
        group = [_key(kind, value)] + [_key(k, person[k]) for k in ("id", "email", "phone") if k in person]
        group = sorted(set(group))
        for key in group:
            self.state.suppressed[key] = group

    def _unsuppress(self, kind: str, value: str) -> None:
        for key in self.state.suppressed.pop(_key(kind, value), []):
            self.state.suppressed.pop(key, None)

    def _event(self, label: str, event_id: Any) -> None:
        if event_id is not None:
            if not isinstance(event_id, str) or not ULID.match(event_id):
                raise ApiError(400, "event id must be a ULID", {"id": "not a ULID"})
            if event_id in self.state.event_ids:
                self.api.stats.flags["duplicate_events_dropped"] += 1
                return
            self.state.event_ids.add(event_id)
        self.state.events[label] += 1

    @staticmethod
    def _check_event(name: Any, data: Any, data_field: str) -> None:
        if not isinstance(name, str) or not name:
            raise ApiError(400, "event name is required", {"name": "required"})
        if len(name.encode()) > MAX_EVENT_NAME_BYTES:
            raise ApiError(400, "event name is longer than 100 bytes", {"name": "too long"}, reason="too_large")
        if data is not None and (not isinstance(data, dict) or json_size(data) > MAX_EVENT_DATA_BYTES):
            raise ApiError(400, "event data must be an object of at most 100,000 bytes", {data_field: "invalid"})

    # --- v1 routes ---

    async def region(self, request: Request) -> JSONResponse:
        return JSONResponse({"url": HOSTS[self.config.region], "region": self.config.region, "environment_id": 1})

    async def identify_v1(self, request: Request) -> JSONResponse:
        kind, value = _path_identifier(request.path_params["identifier"])
        body = await json_body(request) or {}
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object of attributes")
        _check_timestamp(body.get("created_at"), "created_at")
        timestamp = body.pop("_timestamp", None)
        _check_timestamp(timestamp, "_timestamp")
        update_only = body.pop("_update", False) is True
        problems = _attribute_problems(body)
        if len(body) > MAX_ATTRIBUTES:
            problems[""] = "more than 300 attributes in one call"
        if problems and self.config.reject_oversized_v1:
            raise ApiError(400, "attributes over the documented limits", problems, reason="too_large")
        for name, problem in problems.items():
            self._fail(kind, value, f"{name}: {problem}")
        if "" not in problems:
            attributes = {n: v for n, v in body.items() if n not in problems}
            self._identify(kind, value, attributes, timestamp, update_only)
        return JSONResponse({})

    async def delete_v1(self, request: Request) -> JSONResponse:
        self._delete(*_path_identifier(request.path_params["identifier"]))
        return JSONResponse({})

    async def event_v1(self, request: Request) -> JSONResponse:
        _path_identifier(request.path_params["identifier"])
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object")
        self._check_event(body.get("name"), body.get("data"), "data")
        _check_timestamp(body.get("timestamp"), "timestamp")
        self._event(body["name"], body.get("id"))
        return JSONResponse({})

    async def suppress_v1(self, request: Request) -> JSONResponse:
        self._suppress(*_path_identifier(request.path_params["identifier"]))
        return JSONResponse({})

    async def unsuppress_v1(self, request: Request) -> JSONResponse:
        self._unsuppress(*_path_identifier(request.path_params["identifier"]))
        return JSONResponse({})

    # --- v2 routes ---

    async def entity(self, request: Request) -> JSONResponse:
        if len(await request.body()) > MAX_ENTITY_BYTES:
            raise ApiError(400, "request is larger than 32 KB", {"body": "too large"}, reason="too_large")
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
        kind, value = _v2_identifier(entry.get("identifiers"))
        timestamp = entry.get("timestamp")
        _check_timestamp(timestamp, "timestamp")
        if action == "identify":
            attributes = entry.get("attributes", {})
            if not isinstance(attributes, dict):
                raise ApiError(400, "attributes must be an object", {"attributes": "invalid"})
            _check_timestamp(attributes.get("created_at"), "attributes.created_at")
            _check_reserved(attributes, entry)
            problems = _attribute_problems(attributes)
            if problems:
                name, problem = next(iter(problems.items()))
                raise ApiError(400, problem, {f"attributes.{name}": problem}, reason="too_large")
            if len(attributes) > MAX_ATTRIBUTES:
                raise ApiError(400, "more than 300 attributes", {"attributes": "too many"}, reason="too_large")
            update_only = attributes.pop("_update", False) is True
            self._identify(kind, value, attributes, timestamp, update_only)
        elif action == "delete":
            self._delete(kind, value)
        elif action == "suppress":
            self._suppress(kind, value)
        elif action == "unsuppress":
            self._unsuppress(kind, value)
        elif action in ("event", "screen", "page"):
            self._check_event(entry.get("name"), entry.get("attributes"), "attributes")
            self._event(entry["name"] if action == "event" else f"{action}:{entry['name']}", entry.get("id"))
        else:
            self.api.stats.flags[f"person_{action}_not_modelled"] += 1  # accepted; no state for it here

    def _object(self, entry: dict[str, Any]) -> None:
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
        key = ids.get("cio_object_id") or f"{ids['object_type_id']}:{ids['object_id']}"
        if action == "identify":
            attributes = entry.get("attributes", {})
            if not isinstance(attributes, dict) or json_size(attributes) > MAX_OBJECT_ATTRIBUTE_BYTES:
                raise ApiError(400, "attributes must be an object of at most 100 KB", {"attributes": "invalid"})
            stored = self.state.objects.setdefault(key, {})
            for name, v in attributes.items():
                if _cleared(v):
                    stored.pop(name, None)
                else:
                    stored[name] = v
        elif action == "delete":
            self.state.objects.pop(key, None)
        else:
            self.api.stats.flags[f"object_{action}_not_modelled"] += 1

    def _delivery(self, entry: dict[str, Any]) -> None:
        if entry.get("action") != "event":
            raise ApiError(400, "a delivery only takes the event action", {"action": "invalid"})
        if not isinstance(entry.get("identifiers"), dict) or not isinstance(entry["identifiers"].get("id"), str):
            raise ApiError(400, "identifiers.id (the delivery id) is required", {"identifiers": "invalid"})
        if entry.get("name") not in DELIVERY_METRICS:
            raise ApiError(400, "name must be opened, converted or delivered", {"name": "invalid"})
        _check_timestamp(entry.get("timestamp"), "timestamp")
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
        if id_type not in ("id", "email", "cio_id"):
            raise ApiError(400, "id_type must be id, email or cio_id", {"id_type": "invalid"})
        body = await json_body(request)
        ids = body.get("ids") if isinstance(body, dict) else None
        if (
            not isinstance(ids, list)
            or not 1 <= len(ids) <= MAX_SEGMENT_IDS
            or not all(isinstance(i, str) for i in ids)
        ):
            raise ApiError(400, "ids must be a list of 1 to 1000 strings", {"ids": "invalid"})
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
        body = await json_body(request)
        spec = body.get("segment") if isinstance(body, dict) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"].strip():
            message = 'body must be {"segment": {"name": ..., "description": ...}}'
            raise ApiError(400, message, {"segment.name": "required"})
        description = spec.get("description", "")
        if not isinstance(description, str):
            raise ApiError(400, "description must be a string", {"segment.description": "invalid"})
        segment_id = self.state.next_segment
        self.state.next_segment += 1
        segment = {"id": segment_id, "name": spec["name"], "description": description, "type": "manual"}
        segment["members"] = set()
        self.state.segments[segment_id] = segment
        return JSONResponse({"segment": self._segment_json(segment)})

    async def list_segments(self, request: Request) -> JSONResponse:
        return JSONResponse({"segments": [self._segment_json(s) for s in self.state.segments.values()]})

    async def get_segment(self, request: Request) -> JSONResponse:
        return JSONResponse({"segment": self._segment_json(self._segment(request))})


def create_app(config: CustomerIOConfig) -> Starlette:
    return CustomerIO(config).app()
