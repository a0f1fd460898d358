"""Cordial (REST API v2): contact attributes and list membership, one request per contact.

- Contacts are addressed by email (Cordial's primary key `channels.email.address`). A write that sets
  anything is `POST /v2/contacts`, an upsert that creates a missing contact. A write that only unsets
  (attributes cleared on exit, lists left) is `PUT /v2/contacts/email:<email>`; its 404 means there is
  nothing left to unset, so it counts as done: a contact deleted at Cordial is not recreated to be emptied.
- Attributes are top-level keys, only the changed ones on a change; null clears one. `forceSubscribe` is
  never sent; `channels.email.subscribeStatus` is sent only from a model column named `subscribe_status`.
- List membership is a top-level boolean keyed by the list name (true joins, false leaves). Setup creates
  the lists (`/v2/accountlists`, looked up by name first; names are unique, so a refused create is read
  as "someone created it meanwhile" and looked up again).
- Contact attributes must be defined before they are written. Setup reads `/v2/accountcontactattributes`
  and creates the missing ones with the type `TYPES` maps the column's type to (a column's meta
  `cordial_type` overrides it); an existing attribute of another type stops the sync, as every write
  would fail.
- Every answer's body is checked for `errors`, 2xx included: such a contact is rejected with the reason,
  not acknowledged, and sent again next run.
- There is no bulk upsert in REST; `POST /v2/contactimports` loads a CSV file from a URL asynchronously.
  When a chunk holds at least `import_min_rows` contacts whose writes a CSV can express (every value
  set: an empty cell means "leave as is", so clears go one by one; no subscribe status, as the import's
  `subscribe: false` keeps statuses untouched), they go as one import: the file is written to
  `import_dir`, which Cordial reads at `import_url`, the job is polled until it ends, rows it names are
  rejected with its reason and the rest acknowledged. A job that fails rows without naming them, fails,
  or outlasts `import_timeout_s` acknowledges nothing (resent next run; upserts are idempotent). The
  file holds customer data and is deleted when the job ends. Rows are applied in random order, which is
  safe because a file never holds one email twice. In a first sync most rows are adds alone at their
  email: their CSV lines are made in the warehouse (see `bulk`), `MAX_IMPORT_ROWS` to a file. Everything
  else is one request per contact, with concurrency within the account's per-minute rate budget.
- Events are contact activities (`POST /v2/contactactivities`), one per request. They carry no id Cordial
  is known to drop a repeat by, and there is no confirmed way to list them, so a request of unknown fate is
  not retried (`once`) and the engine holds its event instead of sending it again (sinks/engine/events.py).
"""

import asyncio
import base64
import csv
import io
import json
import os
import time
import logging
import uuid
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote, urlsplit

from sinks.destinations.base import (
    Batch, Bulk, Change, Destination, DestinationAuthError, SetupError, column_kind, ensure_attributes, event_properties,
    event_time, json_path, sql_string,
)
from sinks.http import REDACT, HttpClient, Request

SUBSCRIBE_STATUS = "subscribe_status"  # the model column sent as channels.email.subscribeStatus
# Column kind (see base.column_kind) -> Cordial contact attribute type. Lists of any kind are "array".
# Booleans and offset-less timestamps have no faithful Cordial type: cast them in the model, or set
# the column's meta `cordial_type` when the values already fit one.
TYPES = {"string": "string", "number": "number", "date": "date"}
MAX_IMPORT_ROWS = 5000  # contacts per bulk import file
# Column kinds whose text in the warehouse's JSON is what _import_row writes (booleans are not: true vs True).
BULK_KINDS = ("string", "number", "date", "timestamp")
EMAIL = "channels.email.address"
log = logging.getLogger(__name__)


class Cordial(Destination):
    name = "cordial"
    # POST /v2/contacts/merge exists, but its body and what it moves are not documented where Relay can
    # check them, and a merge cannot be undone: the retired contact exits instead (recorded with this note).
    merge_mode = "exit"
    merge_note = ("Cordial's contact merge is not documented in a form Relay can rely on (body and semantics "
                  "unconfirmed): the retired contact was exited (attributes cleared, lists left), not merged")
    credential_hint = "CORDIAL_API_KEY (and that this address is on the key's IP allowlist)"

    def __init__(self, *, base_url: str, api_key: str, rate_per_min: float = 6000, concurrency: int = 8,
                 import_dir: str | None = None, import_url: str | None = None, import_min_rows: int = 1000,
                 import_timeout_s: float = 1800) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        # The API host identifies the account (admin.cordial.io vs usw2...); the key itself is never stored.
        self.account = f"cordial:{urlsplit(self.base_url).netloc}"
        self.rate_per_min, self.concurrency = rate_per_min, concurrency
        # Bulk imports need a place Cordial can fetch files from; without one every write is a request.
        self.import_dir = Path(import_dir) if import_dir and import_url else None
        self.import_url = (import_url or "").rstrip("/")
        self.import_min_rows, self.import_timeout_s = import_min_rows, import_timeout_s
        REDACT.add(api_key)

    CREDENTIAL_VARIABLES = {"api": "CORDIAL_API_KEY"}

    def auth_headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self._key}:".encode()).decode()  # the key is the user, the password empty
        return {"api": f"Basic {token}"}

    def open_client(self, **options) -> HttpClient:
        # Cordial budgets requests per minute; the bucket refills continuously at the same average rate.
        return HttpClient(self.base_url, auth_headers={"Authorization": self.auth_headers()["api"]}, account=self.account,
                          rates={"default": self.rate_per_min / 60}, concurrency=self.concurrency, **options)

    def probes(self) -> dict[str, Request]:
        return {"api": Request("GET", "/v2/accountcontactattributes")}

    def attribute_types(self, spec) -> dict[str, str]:
        if spec.object != "attributes":
            return {}
        return {c: _type(spec, c) for c in spec.attribute_columns if c != SUBSCRIBE_STATUS}

    async def attribute_definitions(self, client) -> dict[str, str] | None:
        return await self._attributes(client)

    # ---------------------------------------------------------------- setup
    async def setup(self, spec, client, registry, audiences) -> None:
        if spec.object == "membership":
            for name in audiences:
                if registry.get("list", name) is None:
                    registry.put("list", name, await self._list_id(client, name))
            return
        wanted = self.attribute_types(spec)
        # The registry keeps each attribute's type: only new or retyped columns need a look at Cordial.
        missing = {c: t for c, t in wanted.items() if registry.get("attribute", c) != t}
        if not missing:
            return
        await ensure_attributes(
            missing, registry, defined=lambda: self._attributes(client), check=_check, vendor="Cordial",
            model=spec.name, type_meta="cordial_type",
            create=lambda key, kind: client.send(Request("POST", "/v2/accountcontactattributes",
                                                         json={"key": key, "name": key, "type": kind})))

    async def _attributes(self, client) -> dict[str, str]:
        response = await client.send(Request("GET", "/v2/accountcontactattributes"))
        _check(response, "listing contact attributes")
        return {a["key"]: a["type"] for a in response.json()}

    async def _list_id(self, client, name: str):
        found = await self._find_list(client, name)
        if found is None:
            created = await client.send(Request("POST", "/v2/accountlists", json={"name": name, "enhanced": True}))
            if created.status_code < 300 and not _errors(created):
                return created.json()["id"]
            found = await self._find_list(client, name)  # a duplicate name is an error: it exists now
            if found is None:
                _check(created, f"creating list {name!r}")
        return found

    async def _find_list(self, client, name: str):
        response = await client.send(Request("GET", "/v2/accountlists", params={"name": name}))
        _check(response, f"looking up list {name!r}")
        return next((lst["id"] for lst in response.json() if lst.get("name") == name), None)

    # ---------------------------------------------------------------- delivery
    def batches(self, spec, changes: list[Change]) -> Iterator[Batch]:
        if spec.events:  # a contact activity each (no id: Cordial is not known to drop a repeat)
            for c in changes:
                yield Batch(Request("POST", "/v2/contactactivities", json=_activity(spec, c), once=True), [c])
            return
        # A contact's changes (its lists, or a record leaving an email another record arrives at) travel
        # together, in one request or one import row, so they are never in flight in parallel.
        by_contact: dict[str, list[Change]] = {}
        for change in changes:
            by_contact.setdefault(change.identifier, []).append(change)
        if self.import_dir is not None:
            rows = {email: row for email, items in by_contact.items() if (row := _import_row(spec, items)) is not None}
            if len(rows) >= self.import_min_rows:
                items = [c for email in rows for c in by_contact.pop(email)]
                yield Batch(None, items, job=lambda client, load, r=rows: self._import(spec, client, lambda: _csv(r), load))
        yield from self._requests(spec, by_contact)

    def _requests(self, spec, by_contact: dict[str, list[Change]]) -> Iterator[Batch]:
        for email, items in by_contact.items():
            if spec.object == "membership":
                body, status = _membership(items), None
            else:
                body, status = _attributes(items)
            if all(c.kind == "remove" for c in items):
                yield Batch(Request("PUT", f"/v2/contacts/email:{quote(email, safe='@')}", json=body), items)
            else:
                body["channels"] = {"email": {"address": email, **({"subscribeStatus": status} if status else {})}}
                yield Batch(Request("POST", "/v2/contacts", json=body), items)

    def interpret(self, spec, batch: Batch, response):
        status, errors = response.status_code, _errors(response)
        if status in (200, 201) and not errors:
            return [(c, None) for c in batch.items]
        if status < 300 and not errors:  # an undocumented success: nothing is confirmed
            raise ValueError(f"HTTP {status} is not how Cordial answers a contact write")
        if status == 404 and batch.request.method == "PUT":
            return [(c, None) for c in batch.items]  # the contact is gone: nothing is left to unset
        detail = "; ".join(f"{e.get('field', '')}: {e.get('message', '')}" for e in errors if isinstance(e, dict))
        what = "contact activity" if batch.request.url.endswith("/contactactivities") else "contact"
        reason = f"Cordial refused the {what} (HTTP {status}): {detail or REDACT.excerpt(response.text, 300)}"
        return [(c, reason) for c in batch.items]

    def bulk(self, spec) -> Bulk | None:
        if self.import_dir is None or spec.object != "attributes":
            return None
        columns = _import_columns(spec)
        if any((column_kind(spec.columns[c]) or "").removeprefix("list ") not in BULK_KINDS for c in columns):
            return None
        # The line _csv writes for an add: the email, then each column's value as text (a list as JSON), empty
        # when unset. Rows _import_row cannot express (no value set, or a subscribe status) are left out.
        values = f"json_extract_string(c.payload, [{', '.join(sql_string(json_path(c)) for c in columns)}])"
        cells = f"""list_transform([c.identifier] || {values}, lambda v: coalesce(
            if(regexp_matches(v, '[",\r\n]'), '"' || replace(v, '"', '""') || '"', v), ''))"""
        importable = f"list_bool_or(list_transform({values}, lambda v: v is not null))"
        if SUBSCRIBE_STATUS in spec.attribute_columns:
            importable += f" and json_extract_string(c.payload, {sql_string(json_path(SUBSCRIBE_STATUS))}) is null"
        entry = f"case when {importable} then array_to_string({cells}, ',') end"
        return Bulk(entry, max_items=MAX_IMPORT_ROWS, min_items=self.import_min_rows)

    def bulk_batch(self, spec, entries: list[str]) -> Batch:
        def text() -> str:  # made on the thread that writes the file
            return _csv({}, _import_columns(spec)) + "\r\n".join(entries) + "\r\n"

        return Batch(None, [], job=lambda client, load: self._import(spec, client, text, load))

    async def _import(self, spec, client, text: Callable[[], str], load):
        """One contact import: write the file, start the job, wait for it, map its row errors back (to the
        changes `load()` gives, in file order). Rows whose outcome the job leaves unknown are sent one by one
        instead. None: every row was applied."""
        self.import_dir.mkdir(parents=True, exist_ok=True)
        name = f"relay-{uuid.uuid4().hex}.csv"  # unguessable: the file may be served over HTTP
        path = self.import_dir / name
        await asyncio.to_thread(_write, path, text)
        try:
            started = await client.send(Request("POST", "/v2/contactimports", json={
                "source": {"transport": "http", "url": f"{self.import_url}/{name}"}, "subscribe": False}))
            if started.status_code in (401, 403):
                raise DestinationAuthError(f"Cordial refused the credentials (HTTP {started.status_code}) "
                                           f"starting a contact import; check {self.credential_hint}")
            if started.status_code >= 300 or _errors(started) or "jobID" not in _json(started):
                job = {"status": "refused", "message": f"HTTP {started.status_code}: {REDACT.excerpt(started.text, 200)}"}
            else:
                job = await self._wait(client, _json(started)["jobID"])
        finally:
            path.unlink(missing_ok=True)
        if job.get("status") == "complete" and job.get("failed") == 0 and not job.get("errors"):
            return None
        items = await load()
        outcomes, unknown = _import_outcomes(job, list(dict.fromkeys(c.identifier for c in items)), items)
        if unknown:
            log.warning("Cordial import %s (%s); sending its %d unconfirmed contacts one by one",
                        job.get("status"), job.get("message") or f"{job.get('failed')} rows failed", len(unknown))
            by_contact: dict[str, list[Change]] = {}
            for change in unknown:
                by_contact.setdefault(change.identifier, []).append(change)
            for batch in self._requests(spec, by_contact):
                response = await client.send(batch.request)
                if response.status_code in (401, 403):
                    raise DestinationAuthError(f"Cordial refused the credentials (HTTP {response.status_code}); "
                                               f"check {self.credential_hint}")
                outcomes += self.interpret(spec, batch, response)
        return outcomes

    async def _wait(self, client, job_id: str) -> dict:
        started = time.monotonic()
        while True:
            response = await client.send(Request("GET", f"/v2/jobs/{quote(job_id)}"))
            job = _json(response)
            if response.status_code < 300 and job.get("status") in ("complete", "failed"):
                return job
            if response.status_code >= 300 and response.status_code != 404:
                return {"status": "unknown", "errors": [], "message": f"HTTP {response.status_code} reading the job"}
            elapsed = time.monotonic() - started
            if elapsed > self.import_timeout_s:
                return {"status": "unknown", "errors": [], "message": f"not finished after {self.import_timeout_s:.0f} s"}
            # A finished job is seen at most a tenth of its run time late (polls every 2 s at most): a run waits
            # for its imports, and a poll is one small GET.
            await asyncio.sleep(min(2.0, max(0.05, elapsed / 10)))


def _attributes(items: list[Change]) -> tuple[dict, str | None]:
    """Top-level attribute keys (null clears) and the subscribe status to set, if any."""
    body, status = {}, None
    # Clears first, so a record arriving at this email overrides one leaving it.
    for change in sorted(items, key=lambda c: c.kind != "remove"):
        for f in change.fields:
            value = change.row.get(f)  # a remove's row: its exit values (anything else is cleared)
            if f == SUBSCRIBE_STATUS:
                status = value or status  # never unset: leaving the model does not unsubscribe
            else:
                body[f] = value
    return body, status


def _import_row(spec, items: list[Change]) -> dict | None:
    """The CSV row for a contact's changes, or None when a CSV cannot say it (clears, subscribe status)."""
    if any(c.kind == "remove" or c.internal for c in items) and spec.object != "membership":
        return None
    if spec.object == "membership":
        return {name: "1" if joined else "0" for name, joined in _membership(items).items()}
    body, status = _attributes(items)
    if status is not None or not body or any(v is None for v in body.values()):
        return None
    return {k: json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict)) else str(v) for k, v in body.items()}


def _import_columns(spec) -> list[str]:
    return sorted(c for c in spec.attribute_columns if c != SUBSCRIBE_STATUS)


def _csv(rows: dict[str, dict], columns: list[str] | None = None) -> str:
    """An import file: a header, then a line per email (an empty cell leaves the value as it is)."""
    columns = columns or sorted({k for row in rows.values() for k in row})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([EMAIL, *columns])
    for email, row in rows.items():
        writer.writerow([email, *(row.get(c, "") for c in columns)])
    return out.getvalue()


def _write(path: Path, text: Callable[[], str]) -> None:
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", newline="", encoding="utf-8") as f:
        f.write(text())


def _import_outcomes(job: dict, emails: list[str], items: list[Change]):
    """(outcomes, changes whose fate is unknown). A completed job's errors name data rows (1-based, in
    file order); when it failed rows it does not name, or did not complete, only named rows are known."""
    named = {}
    for error in job.get("errors") or []:
        if isinstance(error, dict) and isinstance(error.get("row"), int) and 1 <= error["row"] <= len(emails):
            fields = error.get("fields") or {}
            detail = "; ".join(f"{k}: {v}" for k, v in fields.items()) if isinstance(fields, dict) else str(fields)
            named[emails[error["row"] - 1]] = f"Cordial import refused the contact: {REDACT.excerpt(detail, 300)}"
    outcomes = [(c, named[c.identifier]) for c in items if c.identifier in named]
    rest = [c for c in items if c.identifier not in named]
    if job.get("status") != "complete" or job.get("failed") != len(named):
        return outcomes, rest
    return outcomes + [(c, None) for c in rest], []


def _membership(items: list[Change]) -> dict[str, bool]:
    """List name -> true/false; the contact stays in a list while any of its records is a member."""
    lists: dict[str, bool] = {}
    for change in items:
        name = (change.row or change.prev_row)["audience"]
        lists[name] = lists.get(name, False) or change.kind != "remove"
    return lists


def _type(spec, column: str) -> str:
    override = spec.column_meta.get(column, {}).get("cordial_type")
    if override:
        return override
    kind = column_kind(spec.columns[column])
    if kind and kind.startswith("list "):
        return "array"
    if kind in TYPES:
        return TYPES[kind]
    raise SetupError(f"{spec.name}.{column} has type {spec.columns[column]!r}, which maps to no Cordial attribute "
                     f"type: cast it in the model (dates as ISO 8601 strings), or set meta cordial_type")


def _json(response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _errors(response) -> list:
    """The `errors` of an answer, 2xx included; one that is not a list still counts as an error."""
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return (errors if isinstance(errors, list) else [{"message": REDACT.excerpt(errors, 200)}]) if errors else []


def _check(response, doing: str) -> None:
    if response.status_code in (401, 403):
        raise DestinationAuthError(f"Cordial refused the credentials (HTTP {response.status_code}) while {doing}; "
                                   f"check {Cordial.credential_hint}")
    if response.status_code >= 300 or _errors(response):
        raise SetupError(f"Cordial answered HTTP {response.status_code} while {doing}: {REDACT.excerpt(response.text, 300)}")


def _activity(spec, change: Change) -> dict:
    """A contact activity: `a` the action, `ats` when it happened (RFC 3339, UTC), addressed by email."""
    return {"email": change.identifier, "a": change.row[spec.events.name_column],
            "ats": event_time(spec, change).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "properties": event_properties(spec, change)}
