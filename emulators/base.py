"""The emulator: one destination account and the request pipeline every vendor module shares.

An emulator module declares its routes as `Endpoint`s (api.py) and hands them to `Emulator.app()`. Every
request then runs through one pipeline, written once here:

    accounting -> injected faults -> auth -> rate limit -> in-flight claim -> added latency -> handler

The rest lives beside it, one concern a module: the `/_emulator/` admin routes (admin.py), faults
(faults.py), rate limits (rate_limit.py), counters and the opt-in request recorder (recording.py), state
persistence (persistence.py) and the uvicorn runners (server.py).
"""

import asyncio
import dataclasses
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .admin import admin_routes
from .api import ApiError, AuthCheck, Endpoint, ErrorRenderer, Handler, json_body
from .faults import SERVER_ERRORS, Dropped, Faults, drop_connection
from .persistence import State, lifespan
from .rate_limit import RateLimit, TokenBucket
from .recording import RecordedRequest, Stats

log = logging.getLogger("emulators")


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

    def configure(self, faults: Faults, rate_limits: Mapping[str, RateLimit], reseed: bool) -> None:
        """New fault settings and rate limits (POST /_emulator/faults)."""
        self.faults = faults
        self.rate_limits.update(rate_limits)
        self._buckets.clear()  # start every bucket full under the new limits
        if reseed:
            self.rng.seed(faults.seed)

    def reset(self) -> None:
        """Forget the account's state and counters (POST /_emulator/reset); recorded requests stay."""
        self.state.clear()
        self.stats.clear()
        self._buckets.clear()

    def app(self, endpoints: Iterable[Endpoint]) -> Starlette:
        routes = [Route(e.path, self._endpoint(e), methods=[e.method]) for e in endpoints]
        app = Starlette(
            routes=routes + admin_routes(self),
            lifespan=lifespan(self),
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
                    response = await drop_connection(request)
                else:
                    bucket = await self._admit(e, route, check_auth, request)
                    response = await self._handle(e, request)
            except ApiError as err:
                response = self.render_error(request, err)
                response.headers.update(err.headers)
            if bucket is not None and self.rate_limits[e.group].headers:
                response.headers.update(bucket.headers(refused=False))
            status = "dropped" if isinstance(response, Dropped) else str(response.status_code)
            self.stats.by_status[status] += 1
            log.debug("%s %s", route, status)  # the route template: paths can carry emails
            return response

        return endpoint

    async def _admit(self, e: Endpoint, route: str, check_auth: AuthCheck, request: Request) -> TokenBucket | None:
        """Injected stalls and 5xx, then auth, then injected 429s and the rate limit; returns the bucket drawn from."""
        if self.roll(self.faults.timeout_rate):
            # A server that has the whole request applies it even if the client gives up meanwhile: read it
            # first (a body read after the client left would fail, and the write would never land).
            await request.body()
            await asyncio.sleep(self.faults.timeout_s)
        if self.roll(self.faults.error_rate):
            raise ApiError(self.rng.choice(SERVER_ERRORS), "injected server error", reason="server_error")
        check_auth(request)
        bucket = self._bucket(e.group, route)
        publishes = self.rate_limits[e.group].headers
        if self.roll(self.faults.throttle_rate):
            raise ApiError(429, "rate limit exceeded", reason="rate_limited",
                           headers={"Retry-After": "1"} if publishes else None)
        if bucket is not None and not bucket.take():
            raise ApiError(429, "rate limit exceeded", reason="rate_limited",
                           headers=bucket.headers(refused=True) if publishes else None)
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
