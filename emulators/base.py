"""Machinery shared by the three destination emulators.

An emulator module declares its routes as `Endpoint`s and hands them to `Emulator.app()`. Every request
then runs through one pipeline, written once here:

    accounting -> injected faults -> auth -> rate limit -> in-flight claim -> added latency -> handler

plus the `/_emulator/` admin routes (among them `info`: which emulator, serving which state file; and
`auth/<group>`: whether the request's credentials pass), an opt-in recorder of the requests that reach a
handler (for the tests' schema judge), state persistence and the uvicorn runners. Each emulator supplies
only what differs: its state, its credential checks, its routes and how its vendor shapes error bodies.
"""

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import errno
import hmac
import json
import logging
import math
import os
import random
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("emulators")

SERVER_ERRORS = (500, 502, 503, 504)
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass
class Faults:
    """Injected failures. Every probability is drawn per request from one RNG seeded by `seed`."""

    error_rate: float = 0.0  # answer 500/502/503/504 instead of handling the request
    drop_rate: float = 0.0  # close the connection without sending a response
    timeout_rate: float = 0.0  # stall timeout_s before handling (the client should give up first)
    timeout_s: float = 30.0
    latency_ms: float = 0.0  # added to every request
    spike_rate: float = 0.0  # probability of an extra spike_ms on top of latency_ms
    spike_ms: float = 0.0
    soft_error_rate: float = 0.0  # APIs with a 2xx-with-errors mode (Cordial): 200 + errors, nothing applied
    seed: int | None = None


@dataclass
class RateLimit:
    """A token bucket: `limit` requests per `window_s`, refilled continuously; limit 0 disables it."""

    limit: int
    window_s: float = 1.0
    per_route: bool = False  # one bucket per method+route (Cordial, Talon.One Management) instead of per group
    headers: bool = False  # X-Rate-Limit-* on every answer and Retry-After on 429, as Cordial documents


@dataclass(kw_only=True)
class EmulatorConfig:
    """Settings every emulator has; subclasses add credentials and their own defaults."""

    port: int
    rate_limits: dict[str, RateLimit]  # keyed by the route groups the emulator declares
    faults: Faults = field(default_factory=Faults)
    state_file: Path | None = None  # load at start, save after mutations and at shutdown
    save_interval_s: float = 2.0
    # Keep every request that reaches a handler (GET /_emulator/requests). Off by default: a benchmark or
    # soak at a million rows would hold every body in memory.
    record_requests: bool = False


class ApiError(Exception):
    """An error answer; the emulator renders it in its vendor's error body shape.

    `fields` maps a field (or JSON pointer, or parameter name) to what is wrong with it.
    """

    def __init__(
        self,
        status: int,
        message: str,
        fields: Mapping[str, str] | None = None,
        *,
        reason: str = "invalid",
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = dict(fields or {})
        self.reason = reason
        self.headers = dict(headers or {})


class State(Protocol):
    """What an emulator's destination state offers to the shared machinery."""

    def clear(self) -> None: ...
    def to_json(self) -> dict[str, Any]: ...
    def load(self, data: dict[str, Any]) -> None: ...


Handler = Callable[[Request], Awaitable[Response]]
AuthCheck = Callable[[Request], None]  # raises ApiError(401/403) when the request may not pass
ErrorRenderer = Callable[[Request, ApiError], Response]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    route: str  # the route template, e.g. /v2/customer_profiles/{integrationId}
    path: str
    query: dict[str, str]
    body: Any  # the parsed JSON body; None when empty


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    auth: str  # which credential check guards it
    group: str  # which rate limit it draws from
    # Ids (from the request and its parsed body) the request holds while in flight (Talon.One 409).
    claims: Callable[[Request, Any], Iterable[str]] | None = None
    items: Callable[[Any], int] | None = None  # how many items an accepted body carried, for the counters


# --- small helpers the emulators use -------------------------------------------------------------------


def same(given: str, expected: str) -> bool:
    """Constant-time comparison, so response timing leaks nothing about a key."""
    return hmac.compare_digest(given.encode(), expected.encode())


def basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def scheme_token(request: Request, scheme: str) -> str | None:
    """The credential after `scheme` in the Authorization header (e.g. Bearer, ApiKey-v1)."""
    given, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if given.lower() == scheme.lower() and value.strip() else None


async def json_body(request: Request) -> Any:
    """The request body parsed once (Starlette caches it); an empty body reads as None."""
    if not await request.body():
        return None
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "request body is not valid JSON", {"body": "invalid JSON"}) from None


def json_size(value: Any) -> int:
    """Bytes of the most compact JSON encoding of `value`, the way a size limit on a payload is met."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- rate limiting, accounting, in-flight claims -----------------------------------------------------


class TokenBucket:
    def __init__(self, limit: RateLimit):
        self.capacity = limit.limit
        self.rate = limit.limit / limit.window_s
        self.tokens = float(limit.limit)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def headers(self, refused: bool) -> dict[str, str]:
        headers = {
            "X-Rate-Limit-Limit": str(self.capacity),
            "X-Rate-Limit-Remaining": str(int(self.tokens)),
            # Seconds until the bucket is full again, i.e. until the window has fully reset.
            "X-Rate-Limit-Reset": str(math.ceil((self.capacity - self.tokens) / self.rate)),
        }
        if refused:
            headers["Retry-After"] = str(max(1, math.ceil((1 - self.tokens) / self.rate)))
        return headers


class Stats:
    """Request counters for tests, benchmarks and the demo."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.requests = 0
        self.by_route: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.items: Counter[str] = Counter()  # items received (batch entries, ids, profiles) per route
        self.flags: Counter[str] = Counter()  # what the vendor accepts silently but logs (failures, dedups)
        # Most API requests that arrived within one whole second of the clock, refused ones included.
        self.peak_per_second = 0
        self._second, self._in_second = 0, 0

    def arrived(self) -> None:
        second = int(time.monotonic())
        if second != self._second:
            self._second, self._in_second = second, 0
        self._in_second += 1
        self.peak_per_second = max(self.peak_per_second, self._in_second)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_route": dict(self.by_route),
            "by_status": dict(self.by_status),
            "items": dict(self.items),
            "items_total": sum(self.items.values()),
            "flags": dict(self.flags),
            "peak_per_second": self.peak_per_second,
        }


class _Dropped(Response):
    """Answer nothing: the connection was aborted, so the server must not write a response."""

    def __init__(self) -> None:
        super().__init__(status_code=499)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        return None


async def _drop_connection(request: Request) -> Response:
    # uvicorn keeps the transport out of the ASGI scope, but its `receive` is a bound method of the
    # request cycle that owns it. Aborting it before any byte is written makes httpx raise
    # RemoteProtocolError ("Server disconnected without sending a response").
    transport = getattr(getattr(request.receive, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("emulated dropped connection")  # not under uvicorn: fail loudly
    transport.abort()
    await asyncio.sleep(0)  # let the server register the disconnect before the endpoint returns
    return _Dropped()


# --- the emulator --------------------------------------------------------------------------------------


class Emulator:
    """One destination account: its state, settings and counters, and the request pipeline around routes."""

    def __init__(
        self,
        config: EmulatorConfig,
        state: State,
        auth: Mapping[str, AuthCheck],
        render_error: ErrorRenderer,
    ):
        self.state = state
        self.kind = type(config).__name__.removesuffix("Config")
        self.faults = dataclasses.replace(config.faults)
        self.rate_limits = {group: dataclasses.replace(limit) for group, limit in config.rate_limits.items()}
        self.rng = random.Random(self.faults.seed)
        self.stats = Stats()
        self.auth = dict(auth)
        self.render_error = render_error
        self.state_file = Path(config.state_file) if config.state_file else None
        self.save_interval_s = config.save_interval_s
        self.dirty = False
        self._buckets: dict[str, TokenBucket] = {}
        self._in_flight: set[str] = set()
        # Not cleared by /_emulator/reset, so a judge still sees every request a test made.
        self.recorded: list[RecordedRequest] | None = [] if config.record_requests else None

    # Probabilities are checked before drawing so that a zero setting costs nothing and does not
    # advance the RNG (runs with the same seed stay comparable when one fault is switched off).
    def roll(self, probability: float) -> bool:
        return probability > 0 and self.rng.random() < probability

    def soft_error(self) -> bool:
        return self.roll(self.faults.soft_error_rate)

    def app(self, endpoints: Iterable[Endpoint]) -> Starlette:
        routes = [Route(e.path, self._endpoint(e), methods=[e.method]) for e in endpoints]
        routes += [
            Route("/_emulator/info", self._admin(self._info), methods=["GET"]),
            Route("/_emulator/auth/{group}", self._admin(self._check_auth), methods=["GET"]),
            Route("/_emulator/stats", self._admin(lambda r, b: self.stats.to_json()), methods=["GET"]),
            Route("/_emulator/state", self._admin(lambda r, b: self.state.to_json()), methods=["GET"]),
            Route("/_emulator/faults", self._admin(self._settings), methods=["GET", "POST"]),
            Route("/_emulator/reset", self._admin(self._reset), methods=["POST"]),
            Route("/_emulator/requests", self._admin(self._requests), methods=["GET"]),
        ]
        app = Starlette(
            routes=routes,
            lifespan=self._lifespan,
            exception_handlers={HTTPException: self._unrouted},
        )
        app.state.emulator = self
        return app

    def _endpoint(self, e: Endpoint) -> Handler:
        route = f"{e.method} {e.path}"
        check_auth = self.auth[e.auth]

        async def endpoint(request: Request) -> Response:
            self.stats.requests += 1
            self.stats.arrived()
            self.stats.by_route[route] += 1
            bucket = None
            try:
                if self.roll(self.faults.drop_rate):
                    response = await _drop_connection(request)
                else:
                    bucket = await self._admit(e, route, check_auth, request)
                    response = await self._handle(e, request)
            except ApiError as err:
                response = self.render_error(request, err)
                response.headers.update(err.headers)
            if bucket is not None and self.rate_limits[e.group].headers:
                response.headers.update(bucket.headers(refused=False))
            status = "dropped" if isinstance(response, _Dropped) else str(response.status_code)
            self.stats.by_status[status] += 1
            if e.method != "GET" and response.status_code < 300:
                self.dirty = True
            log.debug("%s %s", route, status)  # the route template: paths can carry emails
            return response

        return endpoint

    async def _admit(self, e: Endpoint, route: str, check_auth: AuthCheck, request: Request) -> TokenBucket | None:
        """Injected stalls and 5xx, then auth, then the rate limit; returns the bucket that was drawn from."""
        if self.roll(self.faults.timeout_rate):
            # A server that has the whole request applies it even if the client gives up meanwhile: read it
            # first (a body read after the client left would fail, and the write would never land).
            await request.body()
            await asyncio.sleep(self.faults.timeout_s)
        if self.roll(self.faults.error_rate):
            raise ApiError(self.rng.choice(SERVER_ERRORS), "injected server error", reason="server_error")
        check_auth(request)
        bucket = self._bucket(e.group, route)
        if bucket is not None and not bucket.take():
            headers = bucket.headers(refused=True) if self.rate_limits[e.group].headers else None
            raise ApiError(429, "rate limit exceeded", reason="rate_limited", headers=headers)
        return bucket

    async def _handle(self, e: Endpoint, request: Request) -> Response:
        """Record the request (if asked), claim the ids it touches, add latency while holding them, run the handler."""
        if self.recorded is not None:  # a body that is not JSON is refused here, as the handler would
            query = dict(request.query_params)
            self.recorded.append(RecordedRequest(e.method, e.path, request.url.path, query, await json_body(request)))
        claimed = self._claim(e.claims(request, await json_body(request))) if e.claims else set()
        try:
            f = self.faults
            delay_ms = f.latency_ms + (f.spike_ms if self.roll(f.spike_rate) else 0.0)
            if delay_ms > 0:
                await asyncio.sleep(delay_ms / 1000)
            response = await e.handler(request)
            if e.items is not None:
                self.stats.items[f"{e.method} {e.path}"] += e.items(await json_body(request))
            return response
        finally:
            self._in_flight.difference_update(claimed)

    def _bucket(self, group: str, route: str) -> TokenBucket | None:
        limit = self.rate_limits[group]
        if limit.limit <= 0:
            return None
        key = route if limit.per_route else group
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(limit)
        return bucket

    def _claim(self, ids: Iterable[str]) -> set[str]:
        """Hold ids for the duration of a request; a second request touching one of them is refused."""
        wanted = set(ids)
        busy = wanted & self._in_flight
        if busy:
            raise ApiError(
                409,
                f"another request for {sorted(busy)[0]!r} is in flight; send requests for one profile sequentially",
                reason="conflict",
            )
        self._in_flight |= wanted
        return wanted

    async def _unrouted(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        self.stats.requests += 1
        self.stats.by_status[str(status)] += 1
        message = "method not allowed" if status == 405 else "no such endpoint"
        return self.render_error(request, ApiError(status, message, reason="not_found"))

    # --- admin routes: this machine only, no auth, not counted ---

    def _admin(self, action: Callable[[Request, Any], Any]) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not _local_client(request):
                return JSONResponse({"error": "admin routes answer clients on this machine only"}, 403)
            try:
                body = await json_body(request) if request.method == "POST" else None
                return JSONResponse(action(request, body))
            except ApiError as err:
                return JSONResponse({"error": err.message}, err.status)

        return endpoint

    def _info(self, request: Request, body: Any) -> dict[str, Any]:
        """Which emulator this is and whose state it serves, so a client can tell it from another one."""
        state_file = self.state_file.resolve() if self.state_file else None
        return {
            "emulator": self.kind,
            "pid": os.getpid(),
            "state_file": str(state_file) if state_file else None,
            "state_dir": str(state_file.parent) if state_file else None,
            "auth_groups": sorted(self.auth),
        }

    def _check_auth(self, request: Request, body: Any) -> dict[str, Any]:
        """200 when the request's credentials pass the check of route group `group` (as its API routes would
        judge them), else that check's 401/403. Nothing is counted, rate limited or changed."""
        group = request.path_params["group"]
        if group not in self.auth:
            raise ApiError(404, f"no auth group {group!r}; this emulator has {sorted(self.auth)}")
        self.auth[group](request)
        return {"authorized": True}

    def _settings(self, request: Request, body: Any) -> dict[str, Any]:
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
                faults = dataclasses.replace(self.faults, **updates)
                new_limits = {g: dataclasses.replace(self.rate_limits[g], **v) for g, v in limits.items()}
            except (TypeError, KeyError, AttributeError) as exc:
                raise ApiError(400, f"unknown setting: {exc}") from None
            self.faults = faults
            self.rate_limits.update(new_limits)
            self._buckets.clear()  # start every bucket full under the new limits
            if "seed" in updates:
                self.rng.seed(faults.seed)
        return {
            "faults": dataclasses.asdict(self.faults),
            "rate_limits": {g: dataclasses.asdict(limit) for g, limit in self.rate_limits.items()},
        }

    def _requests(self, request: Request, body: Any) -> list[dict[str, Any]]:
        if self.recorded is None:
            raise ApiError(409, "request recording is off (EmulatorConfig.record_requests, --record-requests)")
        return [dataclasses.asdict(r) for r in self.recorded]

    def _reset(self, request: Request, body: Any) -> dict[str, Any]:
        self.state.clear()
        self.stats.clear()
        self._buckets.clear()
        self.dirty = True
        return {"reset": True}

    # --- persistence ---

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette):
        if self.state_file is None:
            yield
            return
        if self.state_file.exists():
            self.state.load(json.loads(self.state_file.read_bytes()))
        stop = asyncio.Event()
        saver = asyncio.create_task(self._autosave(stop))
        try:
            yield
        finally:
            stop.set()
            self.dirty = True  # always leave a file behind at shutdown
            await saver

    async def _autosave(self, stop: asyncio.Event) -> None:
        # The only writer of the state file, so saves never interleave; the last pass runs after `stop`.
        interval = self.save_interval_s
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if self.dirty:
                self.dirty = False
                # Serialise on the loop (a consistent snapshot), write in a thread (no disk I/O on the loop).
                started = time.monotonic()
                data = json.dumps(self.state.to_json(), separators=(",", ":")).encode()
                # Serialising blocks request handling: with a large state, save less often so that
                # saving never takes more than a tenth of the loop's time.
                interval = max(self.save_interval_s, 10 * (time.monotonic() - started))
                await asyncio.to_thread(write_atomic, self.state_file, data)
            if stop.is_set():
                return


def write_atomic(path: Path, data: bytes) -> None:
    """Write tmp + rename, so a crash mid-save never leaves a truncated state file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _local_client(request: Request) -> bool:
    """A client on this machine: loopback, or connected from the very address the server listens on."""
    client = request.client.host if request.client else None
    server = request.scope.get("server")
    return client is not None and (client in LOOPBACK or client.startswith("127.") or
                                   (server is not None and client == server[0]))


# --- runners ---------------------------------------------------------------------------------------------


def _uvicorn_config(app: Starlette, **kwargs: Any) -> uvicorn.Config:
    # http="auto" picks httptools and loop="auto" picks uvloop when installed.
    return uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2, **kwargs
    )


class EmulatorServer:
    """Serve one emulator app on 127.0.0.1 in a background thread (port 0 picks a free port)."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self.emulator: Emulator = app.state.emulator
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.url = f"http://{host}:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(_uvicorn_config(app))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="emulator", daemon=True
        )

    @property
    def state(self) -> Any:
        return self.emulator.state

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request that reached a handler; needs EmulatorConfig.record_requests."""
        if self.emulator.recorded is None:
            raise RuntimeError("request recording is off: set record_requests=True in the emulator's config")
        return list(self.emulator.recorded)

    def start(self) -> "EmulatorServer":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"emulator at {self.url} failed to start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving; the app's shutdown saves its state file."""
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _SharedSignalServer(uvicorn.Server):
    # Several servers share one process: the runner handles SIGINT/SIGTERM for all of them at once.
    @contextlib.contextmanager
    def capture_signals(self):
        yield


class CannotListen(OSError):
    """A port the emulators were asked to serve on cannot be bound (in use, or an address not of this machine)."""


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, or CannotListen naming them."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = "the address is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise CannotListen(exc.errno, f"cannot listen on {host}:{port}: {reason}") from None


def run_servers(apps: Iterable[tuple[Starlette, int]], host: str = "127.0.0.1",
                listening: Callable[[], None] | None = None) -> None:
    """Serve each (app, port) in one event loop until SIGINT/SIGTERM; shutdown saves every state file.
    Every port is bound before anything is served: one that cannot be raises CannotListen, and nothing starts."""
    apps = list(apps)
    sockets: list[socket.socket] = []
    try:
        for _, port in apps:
            sockets.append(listen(host, port))
    except CannotListen:
        for sock in sockets:
            sock.close()
        raise
    if listening is not None:
        listening()
    servers = [_SharedSignalServer(_uvicorn_config(app, host=host, port=port)) for app, port in apps]

    def stop_all() -> None:
        for server in servers:
            server.should_exit = True

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_all)
        await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in zip(servers, sockets)))

    with asyncio.Runner(loop_factory=servers[0].config.get_loop_factory()) as runner:
        runner.run(main())
