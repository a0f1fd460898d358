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
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from .api import ApiError, Endpoint, basic_credentials, json_body, same, utc_now
from .base import Emulator, EmulatorConfig
from .cordial_imports import run_import
from .cordial_state import CordialState
from .cordial_validation import contact_activity, contact_change, new_attribute, new_import, new_list
from .rate_limit import RateLimit
from .tracked import Tracked


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
            Endpoint("POST", "/v2/contactactivities", self.create_activity, "api", "api", items=one),
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
        change = contact_change(body, self.state, cid, self.config.resubscribe)
        if change.resubscribing:  # resubscribe="ignore": the contact stays unsubscribed
            self.api.stats.flags["resubscribe_ignored"] += 1
            change.status = None
        return self.state.save(cid, change)

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

    async def create_activity(self, request: Request) -> JSONResponse:
        """A contact activity (rudder-transformer's Cordial destination: email or cID, a, properties, ats),
        for a contact that exists."""
        if soft := self._soft_error():
            return soft
        body = contact_activity(await json_body(request))
        key = f"cID:{body['cID']}" if "cID" in body else f"email:{body['email']}"
        cid = self.state.find(key)
        if cid is None:
            raise ApiError(404, "contact not found", {"email" if "email" in body else "cID": "no contact has this key"},
                           reason="not_found")
        self.state.activities.append({"cID": cid, "a": body["a"], "ats": body.get("ats"),
                                      "properties": body.get("properties") or {}})
        return JSONResponse({"success": True})

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
            "lists": [lst["name"] for lst in self.state.lists.peek_values() if cid in lst["members"]],
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
        attribute = new_attribute(await json_body(request), self.state)
        self.state.attributes[attribute["key"]] = attribute
        return JSONResponse(attribute)

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
        lists = [lst for lst in self.state.lists.peek_values() if name is None or lst["name"] == name]
        return JSONResponse([self._list_json(lst) for lst in lists])

    async def create_list(self, request: Request) -> JSONResponse:
        name, enhanced = new_list(await json_body(request), self.state)
        list_id = self.state.next_list
        self.state.next_list += 1
        self.state.lists[list_id] = {"id": list_id, "name": name, "enhanced": enhanced, "members": Tracked()}
        self.state.list_ids[name] = list_id
        return JSONResponse(self._list_json(self.state.lists[list_id]))

    async def get_list(self, request: Request) -> JSONResponse:
        return JSONResponse(self._list_json(self._list(request)))

    async def count_list(self, request: Request) -> JSONResponse:
        return JSONResponse({"count": len(self._list(request)["members"])})

    async def clear_list(self, request: Request) -> JSONResponse:
        self._list(request)["members"] = Tracked()
        return JSONResponse({"success": True})

    async def delete_list(self, request: Request) -> JSONResponse:
        lst = self._list(request)
        del self.state.lists[lst["id"]], self.state.list_ids[lst["name"]]
        return JSONResponse({"success": True})

    # --- imports ---

    async def create_import(self, request: Request) -> JSONResponse:
        url, subscribe = new_import(await json_body(request))
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
        def write(body: dict[str, Any]) -> None:
            self._write(body, self._match(body))

        await run_import(job, url, write, self.state, subscribe, self.api.rng, self.config.import_step_s)


def create_app(config: CordialConfig) -> Starlette:
    return Cordial(config).app()
