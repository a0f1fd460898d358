"""The `/_emulator/` admin routes: which emulator this is, credential checks, counters, state, fault and
rate-limit settings, recorded requests, reset. They answer clients on this machine only, need no auth and
are not counted."""

import dataclasses
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .api import ApiError, Handler, json_body

if TYPE_CHECKING:
    from .base import Emulator

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
Action = Callable[["Emulator", Request, Any], Any]


def admin_routes(emulator: "Emulator") -> list[Route]:
    def route(path: str, action: Action, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, _admin(emulator, action), methods=list(methods))

    return [
        route("/_emulator/info", _info),
        route("/_emulator/auth/{group}", _check_auth),
        route("/_emulator/stats", lambda e, request, body: e.stats.to_json()),
        route("/_emulator/state", lambda e, request, body: e.state.to_json()),
        route("/_emulator/faults", _settings, ("GET", "POST")),
        route("/_emulator/reset", _reset, ("POST",)),
        route("/_emulator/requests", _requests),
    ]


def _admin(emulator: "Emulator", action: Action) -> Handler:
    async def endpoint(request: Request) -> Response:
        if not _local_client(request):
            return JSONResponse({"error": "admin routes answer clients on this machine only"}, 403)
        try:
            body = await json_body(request) if request.method == "POST" else None
            return JSONResponse(action(emulator, request, body))
        except ApiError as err:
            return JSONResponse({"error": err.message}, err.status)

    return endpoint


def _local_client(request: Request) -> bool:
    """A client on this machine: loopback, or connected from the very address the server listens on."""
    client = request.client.host if request.client else None
    server = request.scope.get("server")
    return client is not None and (client in LOOPBACK or client.startswith("127.") or
                                   (server is not None and client == server[0]))


def _info(emulator: "Emulator", request: Request, body: Any) -> dict[str, Any]:
    """Which emulator this is and whose state it serves, so a client can tell it from another one."""
    state_file = emulator.state_file.resolve() if emulator.state_file else None
    return {
        "emulator": emulator.kind,
        "pid": os.getpid(),
        "state_file": str(state_file) if state_file else None,
        "state_dir": str(state_file.parent) if state_file else None,
        "auth_groups": sorted(emulator.auth),
    }


def _check_auth(emulator: "Emulator", request: Request, body: Any) -> dict[str, Any]:
    """200 when the request's credentials pass the check of route group `group` (as its API routes would
    judge them), else that check's 401/403. Nothing is counted, rate limited or changed."""
    group = request.path_params["group"]
    if group not in emulator.auth:
        raise ApiError(404, f"no auth group {group!r}; this emulator has {sorted(emulator.auth)}")
    emulator.auth[group](request)
    return {"authorized": True}


def _settings(emulator: "Emulator", request: Request, body: Any) -> dict[str, Any]:
    """GET shows fault and rate-limit settings; POST updates any subset of them."""
    if body is not None:
        if not isinstance(body, dict):
            raise ApiError(400, "expected a JSON object")
        updates = dict(body)
        limits = updates.pop("rate_limits", {})
        for name, value in updates.items():
            # Every fault setting is a non-negative number; a string here would break every request.
            if name != "seed" and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise ApiError(400, f"{name} must be a non-negative number")
        try:
            faults = dataclasses.replace(emulator.faults, **updates)
            new_limits = {g: dataclasses.replace(emulator.rate_limits[g], **v) for g, v in limits.items()}
        except (TypeError, KeyError, AttributeError) as exc:
            raise ApiError(400, f"unknown setting: {exc}") from None
        emulator.configure(faults, new_limits, reseed="seed" in updates)
    return {
        "faults": dataclasses.asdict(emulator.faults),
        "rate_limits": {g: dataclasses.asdict(limit) for g, limit in emulator.rate_limits.items()},
    }


def _requests(emulator: "Emulator", request: Request, body: Any) -> list[dict[str, Any]]:
    if emulator.recorded is None:
        raise ApiError(409, "request recording is off (EmulatorConfig.record_requests, --record-requests)")
    return [dataclasses.asdict(r) for r in emulator.recorded]


def _reset(emulator: "Emulator", request: Request, body: Any) -> dict[str, Any]:
    emulator.reset()
    return {"reset": True}
