"""Talon.One: customer profile attributes and audience membership through the Integration API v2, with
attribute definitions (and audience look-ups) through the Management API.

- Profiles are addressed by integrationId, the model's identifier column (which already carries any
  per-Application prefix). `PUT /v2/customer_profiles?silent=yes` takes up to 1000 profiles and runs no
  rules; only the changed attributes are sent.
- Talon.One documents no way to unset an attribute and refuses null. An attribute turning null (or
  cleared on exit) is sent as its column's declared `exit_value`, else as "" for strings and [] for lists.
  Numbers, booleans, times and locations cannot be emptied, so a declaration that leaves one without an
  exit_value is refused when it loads (`declaration_problems`): an exit is never counted as done while
  Talon.One still holds the old value.
- A refused request applies nothing. When its errors point at items (`source.pointer`
  /customerProfiles/<n>/... or /data/<n>/...) those rows are rejected with the reason and the rest are
  resent; otherwise the engine bisects the request.
- Parallel requests touching one profile get 409: packs never split one integrationId across requests,
  and 409s are retried (another sync may be writing the same profile).
- Audiences are created with `POST /v2/audiences` and an integrationId slugged from the name. The create
  is not idempotent (409 once it exists): the id then comes from the registry, else from the Management
  API (`GET /v1/audiences`), which needs TALON_ONE_MANAGEMENT_KEY.
- Custom attributes must be defined for CustomerProfile before use. With a management key, setup reads
  `GET /v1/attributes` and creates the missing ones, typed by `TYPES` from the column's type or by its meta
  `talon_one_type` (e.g. "time" for RFC 3339 string columns). Without one it cannot look, and rows with
  undefined attributes are rejected with Talon.One's reason. The Management API allows about 3
  requests/s, so its requests draw from a rate budget of their own.
- Identity merges: Talon.One has no profile merge, so a retired profile is retired (merge_mode).
- Custom events (`POST /v2/events`, one per request) carry Relay's event id as the attribute `relay_event_id`;
  their attributes are defined per event type (entity Event). Talon.One keeps a repeated event, so a request
  of unknown fate is not retried (`once`), the engine journals events before sending, and `landed_events`
  looks unanswered ones up in the Application's event list (Management API; needs TALON_ONE_APPLICATION_ID).
"""

import logging
import re
from datetime import timedelta
from typing import Iterator
from urllib.parse import urlsplit

from sinks.destinations.base import (
    Batch, Bulk, Change, Destination, DestinationAuthError, SetupError, SplitBatch, attributes_sql, column_kind,
    ensure_attributes, event_properties, pack,
)
from sinks.http import REDACT, HttpClient, Request

log = logging.getLogger("relay.talon_one")

MAX_ITEMS = 1000  # profiles per bulk update, actions per customer_audiences request
# Column kind (see base.column_kind) -> Talon.One attribute type; a list of one becomes "(list <type>)".
# Dates and offset-less timestamps are not RFC 3339: format them in the model and declare
# meta talon_one_type: time.
TYPES = {"string": "string", "number": "number", "boolean": "boolean"}
ITEM_POINTER = re.compile(r"^/(?:customerProfiles|data)/(\d+)(?:/|$)")
# How the data routes answer success: bulk profile and audience writes 204 (silent) or 200.
SUCCESS = (200, 201, 204)
# An event attribute carrying Relay's event id: Talon.One has no event id of its own, and a run checks by it
# which events of unknown fate landed.
EVENT_ID = "relay_event_id"
PROFILE_LOOKUPS = 20  # events of unknown fate looked up one profile at a time; more: by type and time


class TalonOne(Destination):
    name = "talon_one"
    # No merge, and an integrationId never changes: the retired profile exits (the declared exit values: never
    # eligible) and its audiences are left by the membership sync.
    merge_mode = "retire"
    merge_note = "Talon.One cannot merge profiles: the retired profile holds the exit values and left its audiences"
    credential_hint = "TALON_ONE_INTEGRATION_KEY (and TALON_ONE_MANAGEMENT_KEY for setup)"

    def __init__(self, *, base_url: str, integration_key: str, management_key: str | None,
                 rate_per_s: float = 300, management_rate_per_s: float = 3, concurrency: int = 8,
                 application_id: int | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.application_id = application_id
        self._integration_key, self._management_key = integration_key, management_key
        self.account = f"talon_one:{urlsplit(self.base_url).netloc}"  # the deployment
        self.rate_per_s, self.management_rate_per_s = rate_per_s, management_rate_per_s
        self.concurrency = concurrency
        self._audiences: dict[str, int] = {}
        REDACT.add(integration_key, management_key)

    CREDENTIAL_VARIABLES = {"integration": "TALON_ONE_INTEGRATION_KEY", "management": "TALON_ONE_MANAGEMENT_KEY"}

    def auth_headers(self) -> dict[str, str]:
        return {"integration": f"ApiKey-v1 {self._integration_key}",
                "management": f"ManagementKey-v1 {self._management_key}"}

    def open_client(self, **options) -> HttpClient:
        # A 409 on a write means another request holds the profile: retried after a backoff.
        return HttpClient(self.base_url, auth_headers={"Authorization": self.auth_headers()["integration"]},
                          account=self.account, concurrency=self.concurrency, retry_conflicts=True,
                          rates={"default": self.rate_per_s, "management": self.management_rate_per_s}, **options)

    def probes(self) -> dict[str, Request]:
        # The vendor answers 404 for a profile that does not exist, 401 for a key it does not know.
        probes = {"integration": Request("GET", "/v1/customer_profiles/relay-preflight/inventory")}
        if self._management_key:
            probes["management"] = self._management("GET", "/v1/attributes", params={"pageSize": 1})
        return probes

    def attribute_types(self, spec) -> dict[str, str]:
        return {c: _type(spec, c) for c in spec.attribute_columns} if spec.object == "attributes" else {}

    async def attribute_definitions(self, client) -> dict[str, str] | None:
        return await self._attributes(client) if self._management_key else None

    @staticmethod
    def declaration_problems(spec) -> list[str]:
        if spec.object == "events":
            problems = []
            for column in spec.attribute_columns:
                try:
                    _type(spec, column)
                except SetupError as exc:
                    problems.append(str(exc))
            return problems
        if spec.object != "attributes":
            return []
        problems = []
        for column in spec.attribute_columns:
            try:
                kind = _type(spec, column)
            except SetupError as exc:
                problems.append(str(exc))
                continue
            if _empty(kind) is None and column not in spec.exit_values:
                problems.append(
                    f"column {column} becomes a Talon.One {kind} attribute, which Talon.One cannot unset: declare "
                    "meta exit_value, what the profile holds once the record leaves the model or the value turns "
                    "null (e.g. false, 0 or '1970-01-01T00:00:00Z')")
        return problems

    def _management(self, method: str, path: str, json=None, params=None) -> Request:
        return Request(method, path, json=json, params=params, group="management",
                       headers={"Authorization": self.auth_headers()["management"]})

    # ---------------------------------------------------------------- setup
    async def setup(self, spec, client, registry, audiences) -> None:
        if spec.object == "events":  # `audiences`: the event types the plan sends
            await self._event_attributes(spec, client, registry, audiences)
            return
        if spec.object == "membership":
            for name in audiences:
                if registry.get("audience", name) is None:
                    registry.put("audience", name, await self._audience_id(spec, client, name))
            self._audiences = {a: int(registry.get("audience", a)) for a in audiences}
            return
        wanted = self.attribute_types(spec)
        # The registry keeps each attribute's type: only new or retyped columns need a look at Talon.One.
        missing = {c: t for c, t in wanted.items() if registry.get("attribute", c) != t}
        if not missing:
            return
        if not self._management_key:
            log.warning("%s: TALON_ONE_MANAGEMENT_KEY is not set, so attributes %s cannot be checked or created; "
                        "rows are rejected if they are not defined for CustomerProfile", spec.name, sorted(missing))
            return
        await ensure_attributes(
            missing, registry, defined=lambda: self._attributes(client), check=_check, vendor="Talon.One",
            model=spec.name, type_meta="talon_one_type",
            # NewAttribute requires description, suggestions and editable (talon-one-sdk's model).
            create=lambda name, kind: client.send(self._management("POST", "/v1/attributes", {
                "entity": "CustomerProfile", "name": name, "title": name, "type": kind,
                "description": f"Synced by relay from {spec.name}", "suggestions": [], "editable": True})))

    async def _event_attributes(self, spec, client, registry, event_types: list[str]) -> None:
        """Each event type's attributes (the sync's property columns), defined for entity Event."""
        wanted = {(t, c): _type(spec, c) for t in event_types for c in spec.attribute_columns}
        wanted.update({(t, EVENT_ID): "string" for t in event_types})
        missing = {k: v for k, v in wanted.items() if registry.get("event_attribute", "/".join(k)) != v}
        if not missing:
            return
        if not self._management_key:
            log.warning("%s: TALON_ONE_MANAGEMENT_KEY is not set, so event attributes %s cannot be checked or "
                        "created; events are rejected if they are not defined", spec.name, sorted(missing))
            return
        listed = await self._listed(client, "/v1/attributes")
        have = {(a.get("eventType"), a["name"]): a["type"] for a in listed if a.get("entity") == "Event"}
        for (event_type, column), kind in missing.items():
            if (event_type, column) not in have:
                created = await client.send(self._management("POST", "/v1/attributes", {
                    "entity": "Event", "eventType": event_type, "name": column, "title": column, "type": kind,
                    "description": f"Synced by relay from {spec.name}", "suggestions": [], "editable": True}))
                _check(created, f"creating attribute {column!r} of event {event_type!r}")
            elif have[(event_type, column)] != kind:
                raise SetupError(f"Talon.One attribute {column!r} of event {event_type!r} exists with type "
                                 f"{have[(event_type, column)]!r}, but {spec.name} sends {kind!r}")
            registry.put("event_attribute", f"{event_type}/{column}", kind)

    def can_look_up_events(self) -> bool:
        return bool(self._management_key and self.application_id)

    async def landed_events(self, spec, client, unknown):
        """Looked up in the Application's event list (Management API: about 3 requests/s) by type and time, and
        by profile when there are few, then matched by the event id Relay sends as an attribute."""
        path = f"/v1/applications/{self.application_id}/events/no_total"
        wanted = {key for key, *_ in unknown}
        if len(unknown) <= PROFILE_LOOKUPS:
            queries = [{"profile": profile, "type": name, "createdAfter": _since(at)} for _, profile, name, at in unknown]
        else:  # a page of a thousand of the type's events beats a request per event
            first: dict[str, object] = {}
            for _, _, name, at in unknown:
                first[name] = min(at, first.get(name, at))
            queries = [{"type": name, "createdAfter": _since(at)} for name, at in first.items()]
        landed = set()
        for query in queries:
            landed |= {key for event in await self._listed(client, path, query)
                       if (key := (event.get("attributes") or {}).get(EVENT_ID)) in wanted}
        return landed

    async def _attributes(self, client) -> dict[str, str]:
        listed = await self._listed(client, "/v1/attributes")
        return {a["name"]: a["type"] for a in listed if a.get("entity") == "CustomerProfile"}

    async def _listed(self, client, path: str, filters: dict | None = None) -> list[dict]:
        """Every item of a paged Management API list (that says its total, or whether it has more)."""
        items: list[dict] = []
        while True:
            response = await client.send(self._management("GET", path, params={
                **(filters or {}), "pageSize": 1000, "skip": len(items)}))
            _check(response, f"listing {path}")
            body = response.json()
            items += body.get("data") or []
            more = body["hasMore"] if "hasMore" in body else len(items) < body.get("totalResultSize", 0)
            if not body.get("data") or not more:
                return items

    async def _audience_id(self, spec, client, name: str) -> int:
        integration_id = _slug(name)
        # A 409 here means "exists", not "busy": it must not be retried like a profile conflict.
        created = await client.send(Request("POST", "/v2/audiences", retry_conflicts=False, json={
            "name": name, "integrationId": integration_id, "description": f"Synced by relay from {spec.name}"}))
        if created.status_code < 300:
            return created.json()["id"]
        if created.status_code != 409:
            _check(created, f"creating audience {name!r}")
        if not self._management_key:
            raise SetupError(f"Talon.One audience {name!r} (integrationId {integration_id!r}) already exists but its "
                             "id is not in the registry: set TALON_ONE_MANAGEMENT_KEY so setup can look it up")
        for audience in await self._listed(client, "/v1/audiences"):
            if audience.get("integrationId") == integration_id:
                if audience.get("name") != name:
                    raise SetupError(f"Talon.One audience integrationId {integration_id!r} belongs to "
                                     f"{audience.get('name')!r}, not {name!r}: rename one of them")
                return audience["id"]
        raise SetupError(f"Talon.One answered 409 creating audience {name!r} but lists no audience with "
                         f"integrationId {integration_id!r}")

    # ---------------------------------------------------------------- delivery
    def batches(self, spec, changes: list[Change]) -> Iterator[Batch]:
        if spec.events:  # one custom event a request; no id, so Talon.One keeps a repeat (see the engine's journal)
            for c in changes:
                yield Batch(Request("POST", "/v2/events", json={
                    "profileId": c.identifier, "type": c.row[spec.events.name_column],
                    "attributes": {**event_properties(spec, c), EVENT_ID: c.key}}, once=True), [c])
            return
        # Changes arrive in identifier order; one profile's items always share a request.
        packs = pack(changes, max_items=MAX_ITEMS, group=lambda c: c.identifier)
        if spec.object == "membership":
            for items in packs:
                data = [{"action": "delete" if c.kind == "remove" else "add", "profileIntegrationId": c.identifier,
                         "audienceId": self._audiences[(c.row or c.prev_row)["audience"]]} for c in items]
                yield Batch(Request("POST", "/v2/customer_audiences", json={"data": data}), items)
            return
        types = {c: _type(spec, c) for c in spec.attribute_columns}
        for items in packs:
            profiles = [{"integrationId": c.identifier, "attributes": _attributes(spec, c, types)} for c in items]
            yield Batch(Request("PUT", "/v2/customer_profiles", params={"silent": "yes"},
                                json={"customerProfiles": profiles}), items)

    def bulk(self, spec) -> Bulk | None:
        attributes = attributes_sql(spec) if spec.object == "attributes" else None
        if attributes is None:
            return None
        # The profile batches() makes for an add: an add's attributes are all set, so none needs emptying.
        entry = f"""'{{"integrationId":' || to_json(c.identifier) || ',"attributes":' || {attributes} || '}}'"""
        return Bulk(entry, max_items=MAX_ITEMS)

    def bulk_batch(self, spec, entries: list[str]) -> Batch:
        body = f'{{"customerProfiles":[{",".join(entries)}]}}'.encode()
        return Batch(Request("PUT", "/v2/customer_profiles", params={"silent": "yes"}, content=body), [])

    def acknowledged(self, spec, response) -> bool:
        return response.status_code in SUCCESS and not _body_errors(response)

    def interpret(self, spec, batch: Batch, response):
        status = response.status_code
        if self.acknowledged(spec, response):
            return [(c, None) for c in batch.items]
        if status < 300:  # an undocumented success (another 2xx, or errors in the body): nothing is confirmed
            raise ValueError(f"HTTP {status} is not how Talon.One answers this request")
        blamed = _blamed(response, len(batch.items))
        if status in (400, 404) and len(batch.items) > 1 and len(blamed) < len(batch.items):
            raise SplitBatch(blamed)
        reason = f"Talon.One refused the request (HTTP {status}): {REDACT.excerpt(response.text, 300)}"
        return [(c, blamed.get(i, reason)) for i, c in enumerate(batch.items)]


def _attributes(spec, change: Change, types: dict[str, str]) -> dict:
    attributes = {}
    exits = spec.exit_values
    for f in change.fields:
        value = change.row.get(f)  # a remove's row: its exit values
        if value is None:
            value = exits[f] if f in exits else _empty(types[f])
        if value is None:  # declaration_problems refuses such a declaration before any run
            raise SetupError(f"{spec.name}.{f}: Talon.One cannot unset a {types[f]} attribute and no exit_value is declared")
        attributes[f] = value
    return attributes


def _empty(kind: str):
    """How Talon.One empties an attribute of this type; None where it cannot."""
    return "" if kind == "string" else [] if kind.startswith("(list ") else None


def _body_errors(response):
    try:
        body = response.json() if response.content else {}
    except ValueError:
        return None
    return body.get("errors") if isinstance(body, dict) else None


def _blamed(response, count: int) -> dict[int, str]:
    """Reasons by item position, from the errors' JSON pointers into the request body."""
    errors = _body_errors(response)
    if not isinstance(errors, list):
        return {}
    reasons: dict[int, list[str]] = {}
    for error in errors:
        source = error.get("source") if isinstance(error, dict) else None
        match = ITEM_POINTER.match(str(source.get("pointer", ""))) if isinstance(source, dict) else None
        if match and int(match[1]) < count:
            reasons.setdefault(int(match[1]), []).append(str(error.get("details") or error.get("title")))
    return {i: f"Talon.One rejected the item: {'; '.join(r)}" for i, r in reasons.items()}


def _type(spec, column: str) -> str:
    override = spec.column_meta.get(column, {}).get("talon_one_type")
    if override:
        return override
    kind = column_kind(spec.columns[column]) or ""
    inner = kind.removeprefix("list ")
    if inner in TYPES:
        return TYPES[inner] if inner == kind else f"(list {TYPES[inner]})"
    raise SetupError(f"{spec.name}.{column} has type {spec.columns[column]!r}, which maps to no Talon.One attribute "
                     "type: format times as RFC 3339 strings in the model and set meta talon_one_type: time")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _check(response, doing: str) -> None:
    if response.status_code in (401, 403):
        raise DestinationAuthError(f"Talon.One refused the credentials (HTTP {response.status_code}) while {doing}; "
                                   f"check {TalonOne.credential_hint}")
    if response.status_code >= 300:
        raise SetupError(f"Talon.One answered HTTP {response.status_code} while {doing}: {REDACT.excerpt(response.text, 300)}")


def _since(journaled_at) -> str:
    """createdAfter for an event journaled at this time: a margin for clocks that disagree."""
    return (journaled_at - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
