"""Cordial emulator: contacts, the contact attribute registry, account lists and contact imports (REST v2).

The contract is /work/shared/destinations.md §2 and §6 "Cordial emulator". Choices where the vendor is
silent or only partly documented:

- Every error body, whatever its status (4xx, 5xx, 429, and the 200 of the 2xx-with-errors mode), is
  `{"error": true, "errors": [{"field": "<field>", "message": "<what is wrong>"}]}`. A client checks for
  `errors` on every answer. In the 2xx-with-errors mode (`Faults.soft_error_rate`) nothing is applied.
- Validation is all-or-nothing per request: 400 lists every bad field and applies nothing. A top-level key
  must be a defined attribute (checked against its type), an existing list name with a boolean, or one of
  `channels`, `forceSubscribe`, `identifyBy`, `suppressTriggers`. `null` clears an attribute.
- Bodies take only the fields the documentation names (the email channel's `address`, `subscribeStatus`,
  `invalid`; a list's `name`, `enhanced`; an attribute's `key`, `name`, `type`; an import's `source`
  {`transport`, `url`} and `subscribe`): any other key, or a wrong type, is 400.
- POST on an existing email (or an `identifyBy` match) updates that contact; both answer 200.
- `unsubscribed` -> `subscribed` without `forceSubscribe: true` keeps the contact unsubscribed
  (`resubscribe="ignore"`, counted in the `flags` stats) or is a 400 (`resubscribe="reject"`).
- Duplicate list names and attribute keys are 409; so is a list name equal to an attribute key (or the
  reverse), because a top-level key could then mean either.
- Contacts are addressed as `<email>`, `email:<email>`, `cID:<id>` or `<secondary key>:<value>` for the
  unique attributes named in `secondary_keys`. An IP allowlist, when configured, refuses others with 403.
- Imports read CSV (header row; columns are attribute keys, `channels.email.address`,
  `channels.email.subscribeStatus` and list names with 1/0) from `file://`, `http://` or `https://` URLs,
  and apply rows in shuffled order, as the vendor's parallel loading does not preserve order.
"""

import asyncio
import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from .base import ApiError, Emulator, EmulatorConfig, Endpoint, RateLimit, basic_credentials, json_body, same, utc_now

ATTRIBUTE_TYPES = {"string", "number", "date", "geo", "array"}
SUBSCRIBE_STATUSES = {"subscribed", "unsubscribed", "none"}
CONTROL_KEYS = {"channels", "forceSubscribe", "identifyBy", "suppressTriggers"}
EMAIL_CHANNEL_KEYS = {"address", "subscribeStatus", "invalid"}
RESERVED_KEYS = CONTROL_KEYS | {"_id", "cID", "email", "lists"}  # names no attribute or list may take
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_JOB_ERRORS = 100


@dataclass(kw_only=True)
class CordialConfig(EmulatorConfig):
    api_key: str = field(repr=False)
    port: int = 8702
    # Per method and endpoint in a one-minute window; Cordial tunes the numbers per account.
    rate_limits: dict[str, RateLimit] = field(
        default_factory=lambda: {"api": RateLimit(6000, 60, per_route=True, headers=True)}
    )
    allowed_ips: frozenset[str] | None = None  # None: any address may call
    secondary_keys: tuple[str, ...] = ()  # unique contact attributes usable as "<key>:<value>"
    resubscribe: str = "ignore"  # or "reject"
    import_step_s: float = 0.05  # pause between job states, so clients see queued -> processing -> complete


def _error_body(err: ApiError) -> dict[str, Any]:
    items = err.fields.items() or [("request", err.message)]
    return {"error": True, "errors": [{"field": f, "message": m} for f, m in items]}


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


class CordialState:
    """Contacts, attribute definitions, lists and import jobs of one account."""

    def __init__(self, secondary_keys: tuple[str, ...]) -> None:
        self.secondary_keys = secondary_keys
        self.clear()

    def clear(self) -> None:
        # A contact is {"email", "subscribeStatus", "attributes"}, kept JSON-ready for cheap dumps.
        self.contacts: dict[str, dict[str, Any]] = {}  # by cID
        self.by_email: dict[str, str] = {}  # lowercased address -> cID
        self.by_key: dict[str, dict[str, str]] = {k: {} for k in self.secondary_keys}  # key -> value -> cID
        self.attributes: dict[str, dict[str, str]] = {}  # key -> {"key", "name", "type"}
        self.lists: dict[int, dict[str, Any]] = {}  # id -> {"id", "name", "enhanced", "members": {cID: joined}}
        self.list_ids: dict[str, int] = {}  # name -> id
        self.jobs: dict[str, dict[str, Any]] = {}
        self.next_contact = 1
        self.next_list = 1
        self.next_job = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts,
            "attributes": self.attributes,
            "lists": {str(i): lst for i, lst in self.lists.items()},
            "jobs": self.jobs,
            "next_contact": self.next_contact,
            "next_list": self.next_list,
            "next_job": self.next_job,
        }

    def load(self, data: dict[str, Any]) -> None:
        self.clear()
        self.contacts = data["contacts"]
        for cid, contact in self.contacts.items():
            self._index(cid, contact, add=True)
        self.attributes = data["attributes"]
        self.lists = {int(i): lst for i, lst in data["lists"].items()}
        self.list_ids = {lst["name"]: i for i, lst in self.lists.items()}
        self.jobs = data["jobs"]
        self.next_contact, self.next_list, self.next_job = data["next_contact"], data["next_list"], data["next_job"]

    def _index(self, cid: str, contact: dict[str, Any], add: bool) -> None:
        keys = [(self.by_email, contact["email"].lower())] + [
            (self.by_key[k], str(contact["attributes"][k])) for k in self.secondary_keys if k in contact["attributes"]
        ]
        for index, value in keys:
            if add:
                index[value] = cid
            else:
                index.pop(value, None)

    def put(self, cid: str, contact: dict[str, Any]) -> None:
        """Store a contact (new or changed) and keep the email and secondary-key indexes in step."""
        if cid in self.contacts:
            self._index(cid, self.contacts[cid], add=False)
        self.contacts[cid] = contact
        self._index(cid, contact, add=True)

    def delete(self, cid: str) -> None:
        self._index(cid, self.contacts.pop(cid), add=False)
        for lst in self.lists.values():
            lst["members"].pop(cid, None)

    def find(self, key: str) -> str | None:
        """A contact by `<email>`, `email:<email>`, `cID:<id>` or `<secondary key>:<value>`."""
        prefix, sep, value = key.partition(":")
        if sep and prefix == "cID":
            return value if value in self.contacts else None
        if sep and prefix == "email":
            return self.by_email.get(value.lower())
        if sep and prefix in self.by_key:
            return self.by_key[prefix].get(value)
        return self.by_email.get(key.lower())


class Cordial:
    def __init__(self, config: CordialConfig):
        if config.resubscribe not in ("ignore", "reject"):
            raise ValueError("resubscribe must be 'ignore' or 'reject'")
        self.config = config
        self.state = CordialState(config.secondary_keys)
        self.api = Emulator(config, self.state, {"api": self._auth}, self._render_error)
        self._jobs: set[asyncio.Task[None]] = set()  # running imports, referenced so they are not collected

    def app(self) -> Starlette:
        one = lambda body: 1  # noqa: E731
        return self.api.app([
            Endpoint("POST", "/v2/contacts", self.create_contact, "api", "api", items=one),
            Endpoint("PUT", "/v2/contacts/{key}", self.update_contact, "api", "api", items=one),
            Endpoint("GET", "/v2/contacts/{key}", self.get_contact, "api", "api"),
            Endpoint("DELETE", "/v2/contacts/{key}", self.delete_contact, "api", "api"),
            Endpoint("PUT", "/v2/contacts/{key}/unsubscribe/{channel}", self.unsubscribe, "api", "api"),
            Endpoint("GET", "/v2/accountcontactattributes", self.list_attributes, "api", "api"),
            Endpoint("POST", "/v2/accountcontactattributes", self.create_attribute, "api", "api"),
            Endpoint("GET", "/v2/accountlists", self.list_lists, "api", "api"),
            Endpoint("POST", "/v2/accountlists", self.create_list, "api", "api"),
            Endpoint("GET", "/v2/accountlists/{list_id}", self.get_list, "api", "api"),
            Endpoint("GET", "/v2/accountlists/{list_id}/count", self.count_list, "api", "api"),
            Endpoint("PUT", "/v2/accountlists/{list_id}/clear", self.clear_list, "api", "api"),
            Endpoint("DELETE", "/v2/accountlists/{list_id}", self.delete_list, "api", "api"),
            Endpoint("POST", "/v2/contactimports", self.create_import, "api", "api"),
            Endpoint("GET", "/v2/jobs/{job_id}", self.get_job, "api", "api"),
        ])  # fmt: skip

    def _auth(self, request: Request) -> None:
        creds = basic_credentials(request)
        # The API key is the user name and the password is empty.
        if creds is None or creds[1] != "" or not same(creds[0], self.config.api_key):
            raise ApiError(401, "invalid API key", {"authorization": "invalid API key"}, reason="unauthorized")
        allowed = self.config.allowed_ips
        if allowed is not None and (request.client is None or request.client.host not in allowed):
            raise ApiError(403, "this address is not on the API key's allowlist", reason="forbidden")

    def _render_error(self, request: Request, err: ApiError) -> JSONResponse:
        return JSONResponse(_error_body(err), err.status)

    def _soft_error(self) -> JSONResponse | None:
        """The 2xx-with-errors mode: answer 200 with errors and apply nothing."""
        if not self.api.soft_error():
            return None
        self.api.stats.flags["soft_errors"] += 1
        return JSONResponse(_error_body(ApiError(200, "the request could not be processed; retry later")))

    # --- contacts ---

    def _write(self, body: Any, cid: str | None) -> tuple[str, bool]:
        """Validate a whole contact body, then create the contact (cid None) or update it."""
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object", {"body": "must be a JSON object"})
        s = self.state
        problems: dict[str, str] = {}
        address, status = self._channel(body.get("channels"), problems)
        force = body.get("forceSubscribe", False)
        for flag in ("forceSubscribe", "suppressTriggers"):
            if not isinstance(body.get(flag, False), bool):
                problems[flag] = "must be true or false"
        attributes: dict[str, Any] = {}
        memberships: dict[int, bool] = {}
        for key, value in body.items():
            if key in CONTROL_KEYS:
                continue
            if key in s.attributes:
                problem = _type_problem(s.attributes[key]["type"], value)
                if problem:
                    problems[key] = problem
                attributes[key] = value
            elif key in s.list_ids:
                if not isinstance(value, bool):
                    problems[key] = "list membership must be true or false"
                memberships[s.list_ids[key]] = value
            else:
                problems[key] = "not a defined contact attribute or list name"
        current = s.contacts.get(cid) if cid is not None else None
        if current is None and address is None:
            problems["channels.email.address"] = "required to create a contact"
        if address is not None and s.by_email.get(address.lower(), cid) != cid:
            problems["channels.email.address"] = "already belongs to another contact"
        for k in s.secondary_keys:
            if attributes.get(k) is not None and s.by_key[k].get(str(attributes[k]), cid) != cid:
                problems[k] = "must be unique across contacts"
        resubscribing = (
            current is not None
            and current["subscribeStatus"] == "unsubscribed"
            and status == "subscribed"
            and force is not True
        )
        if resubscribing and self.config.resubscribe == "reject":
            problems["channels.email.subscribeStatus"] = "resubscribing needs forceSubscribe: true"
        if problems:
            raise ApiError(400, "invalid contact", problems)
        if resubscribing:
            self.api.stats.flags["resubscribe_ignored"] += 1
            status = None

        created = current is None
        if created:
            cid = f"{s.next_contact:024x}"
            s.next_contact += 1
            current = {"email": address, "subscribeStatus": "none", "attributes": {}}
        contact = {**current, "attributes": dict(current["attributes"])}
        if address is not None:
            contact["email"] = address
        if status is not None:
            contact["subscribeStatus"] = status
        for key, value in attributes.items():
            if value is None:
                contact["attributes"].pop(key, None)
            else:
                contact["attributes"][key] = value
        s.put(cid, contact)
        joined = utc_now()
        for list_id, member in memberships.items():
            if member:
                s.lists[list_id]["members"].setdefault(cid, joined)
            else:
                s.lists[list_id]["members"].pop(cid, None)
        return cid, created

    @staticmethod
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

    def _match(self, body: Any) -> str | None:
        """Which existing contact a POST updates: by `identifyBy` keys, else by email address."""
        if not isinstance(body, dict):
            return None
        identify_by = body.get("identifyBy")
        if identify_by is not None:
            if not isinstance(identify_by, list) or not set(identify_by) <= set(self.state.secondary_keys):
                raise ApiError(400, "identifyBy names unknown keys", {"identifyBy": "must list secondary keys"})
            matches = (self.state.find(f"{k}:{body[k]}") for k in identify_by if k in body)
            return next((m for m in matches if m is not None), None)
        email = body["channels"].get("email") if isinstance(body.get("channels"), dict) else None
        address = email.get("address") if isinstance(email, dict) else None
        return self.state.find(address) if isinstance(address, str) else None

    def _contact(self, request: Request) -> str:
        cid = self.state.find(request.path_params["key"])
        if cid is None:
            raise ApiError(404, "contact not found", {"key": "no contact has this key"}, reason="not_found")
        return cid

    async def create_contact(self, request: Request) -> JSONResponse:
        if soft := self._soft_error():
            return soft
        body = await json_body(request)
        cid, created = self._write(body, self._match(body))
        message = "contact created" if created else "contact updated"
        return JSONResponse({"success": True, "message": message, "cID": cid})

    async def update_contact(self, request: Request) -> JSONResponse:
        if soft := self._soft_error():
            return soft
        cid, _ = self._write(await json_body(request), self._contact(request))
        return JSONResponse({"success": True, "message": "contact updated", "cID": cid})

    async def get_contact(self, request: Request) -> JSONResponse:
        cid = self._contact(request)
        contact = self.state.contacts[cid]
        return JSONResponse({
            "_id": cid,
            "cID": cid,
            "channels": {"email": {"address": contact["email"], "subscribeStatus": contact["subscribeStatus"]}},
            **contact["attributes"],
            "lists": [lst["name"] for lst in self.state.lists.values() if cid in lst["members"]],
        })  # fmt: skip

    async def delete_contact(self, request: Request) -> JSONResponse:
        if soft := self._soft_error():
            return soft
        self.state.delete(self._contact(request))
        return JSONResponse({"success": True})

    async def unsubscribe(self, request: Request) -> JSONResponse:
        if soft := self._soft_error():
            return soft
        cid = self._contact(request)
        if request.path_params["channel"] != "email":
            raise ApiError(400, "only the email channel is configured", {"channel": "unknown channel"})
        self.state.put(cid, {**self.state.contacts[cid], "subscribeStatus": "unsubscribed"})
        return JSONResponse({"success": True})

    # --- attribute registry ---

    async def list_attributes(self, request: Request) -> JSONResponse:
        return JSONResponse(list(self.state.attributes.values()))

    async def create_attribute(self, request: Request) -> JSONResponse:
        body = await json_body(request)
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
        if key in self.state.attributes or key in self.state.list_ids:
            raise ApiError(409, "key is already taken", {"key": "an attribute or list already uses it"})
        self.state.attributes[key] = {"key": key, "name": name, "type": kind}
        return JSONResponse(self.state.attributes[key])

    # --- lists ---

    @staticmethod
    def _list_json(lst: dict[str, Any]) -> dict[str, Any]:
        return {"id": lst["id"], "name": lst["name"], "enhanced": lst["enhanced"], "count": len(lst["members"])}

    def _list(self, request: Request) -> dict[str, Any]:
        list_id = request.path_params["list_id"]
        lst = self.state.lists.get(int(list_id)) if list_id.isdigit() else None
        if lst is None:
            raise ApiError(404, "list not found", {"id": "no list has this id"}, reason="not_found")
        return lst

    async def list_lists(self, request: Request) -> JSONResponse:
        name = request.query_params.get("name")
        lists = [lst for lst in self.state.lists.values() if name is None or lst["name"] == name]
        return JSONResponse([self._list_json(lst) for lst in lists])

    async def create_list(self, request: Request) -> JSONResponse:
        body = await json_body(request)
        name = body.get("name") if isinstance(body, dict) else None
        enhanced = body.get("enhanced", False) if isinstance(body, dict) else False
        unknown = body.keys() - {"name", "enhanced"} if isinstance(body, dict) else set()
        if unknown:
            raise ApiError(400, "invalid list", {k: "unknown field; expected name, enhanced" for k in unknown})
        if not isinstance(name, str) or not name.strip() or name in RESERVED_KEYS:
            raise ApiError(400, "invalid list", {"name": "must be a non-empty string and not a reserved key"})
        if not isinstance(enhanced, bool):
            raise ApiError(400, "invalid list", {"enhanced": "must be true or false"})
        if name in self.state.list_ids or name in self.state.attributes:
            raise ApiError(409, "name is already taken", {"name": "a list or attribute already uses it"})
        list_id = self.state.next_list
        self.state.next_list += 1
        self.state.lists[list_id] = {"id": list_id, "name": name, "enhanced": enhanced, "members": {}}
        self.state.list_ids[name] = list_id
        return JSONResponse(self._list_json(self.state.lists[list_id]))

    async def get_list(self, request: Request) -> JSONResponse:
        return JSONResponse(self._list_json(self._list(request)))

    async def count_list(self, request: Request) -> JSONResponse:
        return JSONResponse({"count": len(self._list(request)["members"])})

    async def clear_list(self, request: Request) -> JSONResponse:
        self._list(request)["members"].clear()
        return JSONResponse({"success": True})

    async def delete_list(self, request: Request) -> JSONResponse:
        lst = self._list(request)
        del self.state.lists[lst["id"]], self.state.list_ids[lst["name"]]
        return JSONResponse({"success": True})

    # --- imports ---

    async def create_import(self, request: Request) -> JSONResponse:
        body = await json_body(request)
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
        job_id = f"{self.state.next_job:024x}"
        self.state.next_job += 1
        job = {"jobID": job_id, "status": "queued", "created": utc_now(), "applied": 0, "failed": 0, "errors": []}
        self.state.jobs[job_id] = job
        task = asyncio.create_task(self._run_import(job, url, subscribe))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return JSONResponse({"success": True, "jobID": job_id})

    async def get_job(self, request: Request) -> JSONResponse:
        job = self.state.jobs.get(request.path_params["job_id"])
        if job is None:
            raise ApiError(404, "job not found", {"id": "no job has this id"}, reason="not_found")
        return JSONResponse(job)

    async def _run_import(self, job: dict[str, Any], url: str, subscribe: bool) -> None:
        await asyncio.sleep(self.config.import_step_s)
        job["status"] = "processing"
        await asyncio.sleep(self.config.import_step_s)
        try:
            rows = list(csv.DictReader(io.StringIO(await _fetch(url))))
        except (OSError, httpx.HTTPError, UnicodeDecodeError, csv.Error) as exc:
            problem = f"cannot read the file: {type(exc).__name__}"
            job.update(status="failed", errors=[{"row": None, "message": problem}])
            return
        order = list(range(len(rows)))
        self.api.rng.shuffle(order)
        for i in order:
            try:
                body = self._row_body(rows[i], subscribe)
                self._write(body, self._match(body))
                job["applied"] += 1
            except ApiError as err:
                job["failed"] += 1
                if len(job["errors"]) < MAX_JOB_ERRORS:
                    job["errors"].append({"row": i + 1, "fields": err.fields})
        job["status"] = "complete"
        self.api.dirty = True

    def _row_body(self, row: dict[str, str], subscribe: bool) -> dict[str, Any]:
        """A CSV row as the JSON body a contact POST would carry."""
        body: dict[str, Any] = {}
        email: dict[str, str] = {}
        for column, raw in row.items():
            if raw is None or raw == "":
                continue
            if column == "channels.email.address":
                email["address"] = raw
            elif column == "channels.email.subscribeStatus":
                if subscribe:  # subscribe: false leaves existing statuses untouched
                    email["subscribeStatus"] = raw
            elif column in self.state.list_ids:
                body[column] = {"1": True, "true": True, "0": False, "false": False}.get(raw.lower(), raw)
            else:
                kind = self.state.attributes.get(column, {}).get("type")
                body[column] = _from_csv(kind, raw)
        if email:
            body["channels"] = {"email": email}
        return body


def _from_csv(kind: str | None, raw: str) -> Any:
    """Typed value of a CSV cell; a value that does not parse is kept as text for validation to report."""
    try:
        if kind == "number":
            number = float(raw)
            return int(number) if number.is_integer() else number
        if kind in ("geo", "array"):
            return json.loads(raw)
    except ValueError:
        pass
    return raw


async def _fetch(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return await asyncio.to_thread(Path(unquote(parsed.path)).read_text, encoding="utf-8")
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.text


def create_app(config: CordialConfig) -> Starlette:
    return Cordial(config).app()
