"""HTTP done once for every destination: connection reuse, timeouts, one shared rate budget per
destination account, retries with exponential backoff and jitter, and secret redaction.

Retryable vs permanent is decided here and nowhere else:
  * retried: 429, 5xx, 409 when the destination says it is a concurrency conflict, timeouts and
    connection errors (including a connection dropped mid-response);
  * permanent: every other 4xx, handed back to the destination adapter to map onto rows.
"""

import asyncio
import logging
import random
import re
import time
from dataclasses import dataclass, field

import httpx

log = logging.getLogger("relay.http")

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class Redactor:
    """Replaces every registered secret (and its Basic-auth encodings) with '***'."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._ordered: list[str] = []

    def add(self, *secrets: str | None) -> None:
        import base64

        for secret in secrets:
            if not secret or len(secret) < 4 or secret in self._secrets:
                continue
            # Basic auth headers carry base64("user:password"): redact the encodings of this secret too.
            variants = {secret} | {base64.b64encode(c.encode()).decode().rstrip("=") for c in (f"{secret}:", f":{secret}")}
            self._secrets |= variants
        self._ordered = sorted(self._secrets, key=len, reverse=True)

    def __call__(self, text: object) -> str:
        text = str(text)
        for secret in self._ordered:
            text = text.replace(secret, "***")
        return re.sub(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)([^'\"\s,}]+(\s+[^'\"\s,}]+)?)", r"\1***", text)


REDACT = Redactor()


class RateLimiter:
    """Token bucket shared by every sync talking to one destination account.

    Adaptive: a 429 halves the rate for a while (the destinations that publish no Retry-After give no
    better signal), and the rate climbs back by 10% per second of clean responses up to the ceiling.
    """

    def __init__(self, rate_per_s: float, burst: float | None = None) -> None:
        self.ceiling = rate_per_s
        self.rate = rate_per_s
        self.burst = burst or max(1.0, rate_per_s / 10)
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._pause_until = 0.0
        self._last_raise = time.monotonic()
        self._lock: asyncio.Lock | None = None
        self._loop = None

    def _loop_lock(self) -> asyncio.Lock:
        # Each sync run has its own event loop; an asyncio.Lock belongs to the loop that first used it.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._lock = loop, asyncio.Lock()
        return self._lock

    async def acquire(self) -> None:
        async with self._loop_lock():
            while True:
                now = time.monotonic()
                if now < self._pause_until:
                    await asyncio.sleep(self._pause_until - now)
                    continue
                if self.rate < self.ceiling and now - self._last_raise >= 1.0:
                    self.rate = min(self.ceiling, self.rate * 1.1)
                    self._last_raise = now
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)

    def throttled(self, retry_after: float | None) -> None:
        now = time.monotonic()
        self.rate = max(self.ceiling / 50, self.rate / 2)
        self._last_raise = now
        self._tokens = 0
        if retry_after:
            self._pause_until = max(self._pause_until, now + retry_after)


_LIMITERS: dict[tuple[str, str], RateLimiter] = {}


def shared_limiter(account: str, group: str, rate_per_s: float) -> RateLimiter:
    """One limiter per (account, route group) in this process, whatever the number of syncs."""
    key = (account, group)
    if key not in _LIMITERS:
        _LIMITERS[key] = RateLimiter(rate_per_s)
    return _LIMITERS[key]


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    server_errors: int = 0
    network_errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class RetriesExhausted(Exception):
    """A request kept failing with retryable errors; its rows stay unacknowledged for the next run."""


@dataclass
class Request:
    method: str
    url: str
    json: object = None
    content: bytes | None = None
    params: dict | None = None
    headers: dict | None = None  # per-request auth for a second API surface (e.g. Customer.io's App API)
    group: str = "default"  # which rate budget it draws from
    # None: the client's `retry_conflicts`; False for a request whose 409 means "already exists", not "busy".
    retry_conflicts: bool | None = None


class HttpClient:
    def __init__(
        self,
        base_url: str,
        *,
        auth_headers: dict[str, str],
        account: str,
        rates: dict[str, float],
        timeout_s: float = 30.0,
        max_attempts: int = 8,
        max_throttle_wait_s: float = 600.0,
        backoff_base_s: float = 0.25,
        backoff_cap_s: float = 30.0,
        concurrency: int = 8,
        retry_conflicts: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.account = account
        # The budget belongs to the account at this host, whichever sync uses it.
        self.limiters = {group: shared_limiter(f"{account}@{self.base_url}", group, rate) for group, rate in rates.items()}
        self.max_attempts = max_attempts
        self.max_throttle_wait_s = max_throttle_wait_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.retry_conflicts = retry_conflicts
        self.stats = Stats()
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={**auth_headers, "User-Agent": "relay-sync/0.1"},
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        REDACT.add(*auth_headers.values())

    async def __aenter__(self) -> "HttpClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.backoff_cap_s, retry_after)
        # Full jitter: spreads retries of concurrent requests instead of synchronising them.
        return random.uniform(0, min(self.backoff_cap_s, self.backoff_base_s * 2**attempt))

    async def send(self, request: Request) -> httpx.Response:
        """Send with retries; returns the final non-retryable response or raises RetriesExhausted.

        Failures (5xx, retryable 409s, network errors) get `max_attempts` tries. Being throttled is not a
        failure: 429s are retried for as long as the total wait stays under `max_throttle_wait_s`."""
        limiter = self.limiters.get(request.group) or self.limiters["default"]
        retry_conflicts = self.retry_conflicts if request.retry_conflicts is None else request.retry_conflicts
        failures, throttles, waited = 0, 0, 0.0
        last_error = "no attempt made"
        while True:
            await limiter.acquire()
            self.stats.requests += 1
            if failures or throttles:
                self.stats.retries += 1
            try:
                headers = dict(request.headers or {})
                if request.content is not None:
                    headers["Content-Type"] = "application/json"
                response = await self._client.request(
                    request.method, request.url, json=request.json, content=request.content,
                    params=request.params, headers=headers or None,
                )
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                self.stats.network_errors += 1
                last_error = f"{type(exc).__name__}: {REDACT(exc)}"
                log.debug("network error on %s %s: %s", request.method, request.url, last_error)
                response, retry_after = None, None
            else:
                self.stats.statuses[response.status_code] = self.stats.statuses.get(response.status_code, 0) + 1
                retry_after = _retry_after(response)
                if response.status_code == 429:
                    self.stats.throttled += 1
                    limiter.throttled(retry_after)
                    delay = self._delay(min(throttles, 6), retry_after)
                    throttles += 1
                    waited += delay
                    if waited > self.max_throttle_wait_s:
                        raise RetriesExhausted(f"{request.method} {request.url} still throttled (HTTP 429) after "
                                               f"waiting {waited:.0f}s")
                    await asyncio.sleep(delay)
                    continue
                if response.status_code >= 500:
                    self.stats.server_errors += 1
                elif not (response.status_code == 409 and retry_conflicts):
                    return response
                last_error = f"HTTP {response.status_code}: {REDACT(response.text[:200])}"
            failures += 1
            if failures >= self.max_attempts:
                raise RetriesExhausted(f"{request.method} {request.url} failed {failures} times; last: {last_error}")
            await asyncio.sleep(self._delay(failures - 1, retry_after))


def _retry_after(response: httpx.Response) -> float | None:
    for header in ("Retry-After", "X-Rate-Limit-Reset"):
        value = response.headers.get(header)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None
