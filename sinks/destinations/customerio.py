"""Customer.io: people attributes and person events through the Track API v2 batch endpoint, and
manual-segment membership through Track's add_customers/remove_customers (segments created via the App API)."""

import base64
import hashlib
from typing import Iterator

from sinks.destinations.base import (
    Batch, Bulk, Change, Destination, DestinationAuthError, SetupError, SplitBatch, attributes_sql, dumps,
    event_properties, event_ms, event_ms_sql, json_path, pack, sql_string,
)
from sinks.http import REDACT, HttpClient, Request

MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_ENTRIES = 10_000
MAX_ENTRY_BYTES = 32 * 1024
MAX_SEGMENT_IDS = 1000
CLEARED = ""  # Customer.io removes a person attribute set to an empty string
# ...except its reserved timestamps, which must be integers: null removes those (an empty string is a 400).
TIMESTAMPS = ("created_at", "_timestamp")
# Attributes that are also identifiers. Customer.io refuses a whole update, silently (a 2xx, logged as an
# attribute update failure), when one cannot be applied: held by another person (e.g. one a merge retired),
# or an email change by id the workspace does not allow. A change to one travels in an entry of its own,
# after the rest, so every other attribute (eligibility first of all) still lands.
IDENTIFIER_ATTRIBUTES = ("email", "phone")
MAX_MERGES = 100  # merge entries per request (each is followed by its survivor's re-assertion)


class CustomerIO(Destination):
    name = "customerio"
    deduplicates_events = True  # by the event's ULID id
    merge_mode = "merge"  # v2 batch action merge: attributes, recent events, segments and history move
    credential_hint = "CUSTOMERIO_SITE_ID / CUSTOMERIO_TRACK_API_KEY (and CUSTOMERIO_APP_API_KEY for segments)"

    def __init__(self, *, track_url: str, app_url: str, site_id: str, track_api_key: str, app_api_key: str | None,
                 rate_per_s: float = 100, concurrency: int = 8, region: str = "us") -> None:
        self.track_url, self.app_url = track_url.rstrip("/"), app_url.rstrip("/")
        self.region = region
        self.site_id, self._track_key, self._app_key = site_id, track_api_key, app_api_key
        self.account = f"customerio:{site_id}"
        self.rate_per_s, self.concurrency = rate_per_s, concurrency
        self._segments: dict[str, str] = {}
        REDACT.add(track_api_key, app_api_key)

    CREDENTIAL_VARIABLES = {"track": "CUSTOMERIO_SITE_ID, CUSTOMERIO_TRACK_API_KEY", "app": "CUSTOMERIO_APP_API_KEY"}

    def auth_headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.site_id}:{self._track_key}".encode()).decode()
        return {"track": f"Basic {token}", "app": f"Bearer {self._app_key}"}

    def open_client(self, **options) -> HttpClient:
        return HttpClient(self.track_url, auth_headers={"Authorization": self.auth_headers()["track"]}, account=self.account,
                          rates={"default": self.rate_per_s, "app": 10}, concurrency=self.concurrency, **options)

    def probes(self) -> dict[str, Request]:
        probes = {"track": Request("GET", "/api/v1/accounts/region")}
        if self._app_key:
            probes["app"] = self._app("GET", "/v1/segments")
        return probes

    def probe_problem(self, group: str, response) -> str | None:
        region = _json(response).get("region") if group == "track" else None
        if region and region != self.region:
            return (f"the workspace is in region {region!r} but CUSTOMERIO_REGION is {self.region!r}: set "
                    f"CUSTOMERIO_REGION={region}")
        return None

    def _app(self, method: str, path: str, json=None) -> Request:
        return Request(method, f"{self.app_url}{path}", json=json, group="app",
                       headers={"Authorization": self.auth_headers()["app"]})

    async def setup(self, spec, client, registry, audiences) -> None:
        if spec.object != "membership":
            return
        missing = [a for a in audiences if registry.get("segment", a) is None]
        if missing:
            if not self._app_key:
                raise SetupError(f"manual segments {missing} are unknown and CUSTOMERIO_APP_API_KEY is not set to create them")
            listed = await client.send(self._app("GET", "/v1/segments"))
            _raise_for(listed, "listing segments")
            existing = {s["name"]: s["id"] for s in listed.json().get("segments", []) if s.get("type", "manual") == "manual"}
            for name in missing:
                if name not in existing:
                    created = await client.send(self._app("POST", "/v1/segments", {
                        "segment": {"name": name, "description": f"Managed by relay from {spec.name}"}}))
                    _raise_for(created, f"creating segment {name!r}")
                    existing[name] = created.json()["segment"]["id"]
                registry.put("segment", name, existing[name])
        self._segments = {a: registry.get("segment", a) for a in audiences}

    def batches(self, spec, changes: list[Change]) -> Iterator[Batch]:
        if spec.object == "membership":
            yield from self._membership_batches(changes)
            return
        merges = [c for c in changes if c.kind == "merge"]
        for group in pack(merges, max_items=MAX_MERGES):
            yield Batch(None, group, job=lambda client, load, g=group: self._merge(spec, client, g))
        changes = [c for c in changes if c.kind != "merge"]
        sized: list[tuple[Change, bytes]] = []
        for change in changes:
            if spec.events:
                entries = [dumps(_event(spec, change)).encode()]
            else:
                entries = [dumps(_identify(change, fields)).encode() for fields in _entry_fields(change)]
            largest = max(map(len, entries))
            if largest > MAX_ENTRY_BYTES:
                yield Batch(None, [change], error=f"entry is {largest} bytes; Customer.io accepts at most {MAX_ENTRY_BYTES}")
            else:
                sized.append((change, b",".join(entries)))
        joined = dict((id(c), e) for c, e in sized)
        # 2 bytes of slack per entry for the separators.
        for group in pack([c for c, _ in sized], max_items=MAX_BATCH_ENTRIES // 2, max_bytes=MAX_BATCH_BYTES - 64,
                          size=lambda c: len(joined[id(c)]) + 2):
            body = b'{"batch":[' + b",".join(joined[id(c)] for c in group) + b"]}"
            yield Batch(Request("POST", "/api/v2/batch", content=body), group)

    def bulk(self, spec) -> Bulk | None:
        attributes = attributes_sql(spec) if spec.object in ("attributes", "events") else None
        if attributes is None:
            return None
        if spec.events:
            entry = _event_sql(spec, attributes)
        else:  # the entry _identify makes for an add
            head, tail = '{"type":"person","identifiers":{"id":', '},"action":"identify","attributes":'
            entry = f"{sql_string(head)} || to_json(c.identifier) || {sql_string(tail)} || {attributes} || '}}'"
        return Bulk(entry, max_items=MAX_BATCH_ENTRIES, max_bytes=MAX_BATCH_BYTES - 64, max_entry_bytes=MAX_ENTRY_BYTES)

    def bulk_batch(self, spec, entries: list[str]) -> Batch:
        return Batch(Request("POST", "/api/v2/batch", content=f'{{"batch":[{",".join(entries)}]}}'.encode()), [])

    def acknowledged(self, spec, response) -> bool:
        return response.status_code == 200 and not _json(response).get("errors")

    def _membership_batches(self, changes: list[Change]) -> Iterator[Batch]:
        by_target: dict[tuple[str, str], list[Change]] = {}
        for change in changes:
            audience = (change.row or change.prev_row)["audience"]
            action = "remove_customers" if change.kind == "remove" else "add_customers"
            by_target.setdefault((audience, action), []).append(change)
        for (audience, action), items in by_target.items():
            segment = self._segments.get(audience)
            for group in pack(items, max_items=MAX_SEGMENT_IDS):
                if segment is None:
                    yield Batch(None, group, error=f"manual segment {audience!r} has no Customer.io id")
                    continue
                yield Batch(Request("POST", f"/api/v1/segments/{segment}/{action}",
                                    json={"ids": [c.identifier for c in group]}, params={"id_type": "id"}), group)

    def interpret(self, spec, batch: Batch, response):
        status = response.status_code
        if self.acknowledged(spec, response):
            return [(c, None) for c in batch.items]
        listed = _json(response).get("errors") or []
        errors = {e.get("batch_index"): e for e in listed if isinstance(e, dict)} if isinstance(listed, list) else {}
        # Which item each entry belongs to (a bulk batch has one entry per item).
        owner = [i for i, c in enumerate(batch.items) for _ in _entry_fields(c)]
        if errors.keys() - {None} and not all(isinstance(i, int) and 0 <= i < len(owner) for i in errors):
            # Blames entries that are not in the batch: which ones were applied is unknown.
            raise ValueError(f"errors name batch_index {sorted(map(str, errors))[:5]} of a {len(owner)}-entry batch")
        if status in (207, 400) and errors.keys() - {None}:
            # 207: some entries failed; 400 with indexed errors: every entry failed, each with its reason.
            reasons: dict[int, list[str]] = {}
            for index, error in sorted(errors.items()):
                detail = "; ".join(str(error[k]) for k in ("reason", "field", "message") if error.get(k))
                reasons.setdefault(owner[index], []).append(detail or "no reason given")
            return [(c, f"Customer.io rejected the entry: {'; '.join(reasons[i])}" if i in reasons else None)
                    for i, c in enumerate(batch.items)]
        if status in (400, 413) and len(batch.items) > 1:
            raise SplitBatch()
        reason = f"HTTP {status}: {REDACT.excerpt(response.text, 300)}"
        return [(c, reason) for c in batch.items]

    async def _merge(self, spec, client: HttpClient, group: list[Change]):
        """Merge each retired person into its survivor (which the engine saw acknowledged first: Customer.io
        ignores a merge into a person it does not hold yet), then re-assert each survivor in full: the merge
        filled the survivor's unset attributes from the retired person, which the model may not give it."""
        outcomes = dict(await self._merge_entries(spec, client, group))
        if self.failpoint:
            self.failpoint("merged")
        survivors = [Change(c.key, "change", str(c.row[spec.identifier]), c.row, fields=list(spec.attribute_columns),
                            rn=c.rn) for c in group if outcomes[c.rn] is None]
        for batch in self.batches(spec, survivors):
            for c, error in await self._answered(spec, client, batch):
                if error is not None:
                    outcomes[c.rn] = f"merged, but re-asserting the survivor failed: {error}"
        return [(c, outcomes[c.rn]) for c in group]

    async def _answered(self, spec, client: HttpClient, batch: Batch) -> list[tuple[Change, str | None]]:
        if batch.request is None:
            return [(c, batch.error) for c in batch.items]
        response = await client.send(batch.request)
        _raise_for_auth(response)
        try:
            return self.interpret(spec, batch, response)
        except SplitBatch:  # refused as a whole: the next run merges (a no-op by then) and re-asserts again
            return [(c, f"HTTP {response.status_code}: {REDACT.excerpt(response.text, 300)}") for c in batch.items]

    async def _merge_entries(self, spec, client: HttpClient, group: list[Change]) -> list[tuple[int, str | None]]:
        """(step, None or why it was refused) for each merge; a request refused as a whole is bisected."""
        entries = [{"type": "person", "action": "merge", "primary": {"id": str(c.row[spec.identifier])},
                    "secondary": {"id": c.identifier}} for c in group]
        response = await client.send(Request("POST", "/api/v2/batch", json={"batch": entries}))
        _raise_for_auth(response)
        try:
            return [(c.rn, error) for c, error in self.interpret(spec, Batch(None, group), response)]
        except SplitBatch:
            half = len(group) // 2
            return [*await self._merge_entries(spec, client, group[:half]),
                    *await self._merge_entries(spec, client, group[half:])]


def _entry_fields(change: Change) -> list[list[str]]:
    """The fields of each entry a change becomes: a change to an identifier attribute goes last, on its own."""
    moved = [f for f in change.fields if f in IDENTIFIER_ATTRIBUTES] if change.kind == "change" else []
    rest = [f for f in change.fields if f not in moved]
    return [rest, moved] if moved and rest else [change.fields]


def _identify(change: Change, fields: list[str]) -> dict:
    attributes = {f: change.row.get(f) for f in fields}
    for f, value in attributes.items():
        if value is None:
            attributes[f] = None if f in TIMESTAMPS else CLEARED
    return {"type": "person", "identifiers": {"id": change.identifier}, "action": "identify", "attributes": attributes}


def _event(spec, change: Change) -> dict:
    """A person event. Its id is a ULID derived from the event id, so Customer.io drops a resend."""
    ms = event_ms(spec, change)
    return {"type": "person", "identifiers": {"id": change.identifier}, "action": "event",
            "name": change.row[spec.events.name_column], "id": event_ulid(change.key, ms), "timestamp": ms // 1000,
            "attributes": event_properties(spec, change)}


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_FROM_RFC4648 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD)


def event_ulid(key: str, ms: int) -> str:
    """A ULID (48-bit milliseconds + 80 bits) that is the same for the same event every time: the event's
    time, and a hash of its key in place of the random part. (_event_sql computes the same in SQL.)"""
    value = (max(0, ms) & (2**48 - 1)) << 80 | int.from_bytes(hashlib.sha256(key.encode()).digest()[:10], "big")
    # 26 base-32 digits are 130 bits, the value's 128 after two zero bits: shifted into 17 bytes, base 32
    # reads them in the first 26 digits.
    return base64.b32encode((value << 6).to_bytes(17, "big"))[:26].decode().translate(_FROM_RFC4648)


def _event_sql(spec, attributes: str) -> str:
    """SQL over _changes (alias c) for the entry _event makes for an event: its ULID from the same time and
    key hash, digit by digit (5 bits each: 10 from the 48-bit milliseconds, 8 from each 40-bit half of the
    hash)."""
    options = spec.events
    ms = f"greatest(0, {event_ms_sql(spec)})"
    digest = "sha256(c.record_key)"
    halves = [f"('0x' || substr({digest}, {start}, 10))::bigint" for start in (1, 11)]
    digits = [f"(({ms}) >> {45 - 5 * k}) & 31" for k in range(10)]
    digits += [f"({half} >> {35 - 5 * k}) & 31" for half in halves for k in range(8)]
    ulid = " || ".join(f"substr('{_CROCKFORD}', ({d}) + 1, 1)" for d in digits)
    name = f"json_extract(c.payload, {sql_string(json_path(options.name_column))})"
    parts = ['{"type":"person","identifiers":{"id":', "to_json(c.identifier)", '},"action":"event","name":', name,
             ',"id":"', ulid, '","timestamp":', f"(({ms}) // 1000)", ',"attributes":', attributes, "}"]
    return " || ".join(sql_string(p) if i % 2 == 0 else p for i, p in enumerate(parts))


def _json(response) -> dict:
    try:
        body = response.json()
        return body if isinstance(body, dict) else {}
    except ValueError:
        return {}


def _raise_for_auth(response) -> None:
    if response.status_code in (401, 403):
        raise DestinationAuthError(f"Customer.io refused the credentials (HTTP {response.status_code}); check "
                                   f"{CustomerIO.credential_hint}")


def _raise_for(response, doing: str) -> None:
    if response.status_code >= 300:
        raise SetupError(f"Customer.io answered HTTP {response.status_code} while {doing}: {REDACT.excerpt(response.text, 300)}")
