"""The HTTP client every destination adapter sends through: connection reuse, timeouts, the account's
shared rate budget, and the retry loop that decides what is tried again (see the sinks.http docstring)."""

import asyncio
import functools
import logging
import os
import re
import ssl
from dataclasses import dataclass, field

import httpx

from sinks.http.ambiguity import AMBIGUOUS_ERRORS, AMBIGUOUS_STATUS, note_ambiguous
from sinks.http.emulator import check_listening, check_refused
from sinks.http.exceptions import FateUnknown
from sinks.http.rate import RateLimiter, shared_limiter
from sinks.http.redaction import REDACT, excerpt
from sinks.http.retries import Attempts, _unexpected, backoff_delay, read_retry_after

# httpx logs every request line, full URL included, at INFO; a URL can address a contact by email
# (Cordial). Our own logs name requests by Request.label instead.
logging.getLogger("httpx").setLevel(logging.WARNING)

_ADDRESSED = re.compile(r"[^/?#]*@[^/?#]*")


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    server_errors: int = 0
    network_errors: int = 0
    unexpected: int = 0  # answers no JSON API gives (see the sinks.http docstring)
    statuses: dict[int, int] = field(default_factory=dict)


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
    # True for a write the destination applies every time it receives it (no id it drops repeats by): after an
    # answer of unknown fate it raises FateUnknown instead of being tried again.
    once: bool = False

    @property
    def label(self) -> str:
        """Method and path for logs and errors, without customer data: a path addressing a contact by
        email (Cordial's `/v2/contacts/email:<address>`) names the contact only as <contact>."""
        return f"{self.method} {_ADDRESSED.sub('<contact>', self.url)}"


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
            verify=_tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")),
        )
        REDACT.add(*auth_headers.values())
        check_listening(self.base_url)

    async def __aenter__(self) -> "HttpClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        return backoff_delay(attempt, retry_after, self.backoff_base_s, self.backoff_cap_s)

    async def send(self, request: Request) -> httpx.Response:
        """Send with retries; returns the final non-retryable response or raises RetriesExhausted.

        Failures (5xx, retryable 409s, network errors) get `max_attempts` tries. Being throttled is not a
        failure: 429s are retried for as long as the total wait stays under `max_throttle_wait_s`."""
        limiter = self.limiters.get(request.group) or self.limiters["default"]
        retry_conflicts = self.retry_conflicts if request.retry_conflicts is None else request.retry_conflicts
        attempts = Attempts(request.label, self.max_attempts, self.max_throttle_wait_s)
        while True:
            await limiter.acquire()
            self.stats.requests += 1
            if attempts.retrying:
                self.stats.retries += 1
            try:
                response = await self._request(request)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                self._network_error(request, exc)
                if request.once and isinstance(exc, AMBIGUOUS_ERRORS):
                    raise FateUnknown(f"{request.label}: {type(exc).__name__}, so it may have landed") from exc
                attempts.failed("network error", f"{type(exc).__name__}: {REDACT(exc)}")
                retry_after = None
            else:
                self.stats.statuses[response.status_code] = self.stats.statuses.get(response.status_code, 0) + 1
                retry_after = read_retry_after(response)
                if response.status_code == 429:
                    await self._throttled(limiter, attempts, retry_after)
                    continue
                reason = self._retry_reason(request, response, retry_conflicts)
                if reason is None:
                    return response
                attempts.failed(*reason)
            await asyncio.sleep(self._delay(attempts.failures - 1, retry_after))

    async def _request(self, request: Request) -> httpx.Response:
        headers = dict(request.headers or {})
        if request.content is not None:
            headers["Content-Type"] = "application/json"
        return await self._client.request(request.method, request.url, json=request.json, content=request.content,
                                          params=request.params, headers=headers or None)

    def _network_error(self, request: Request, exc: httpx.TransportError) -> None:
        """Count a network error; raises EmulatorUnreachable when retrying it cannot help."""
        if isinstance(exc, AMBIGUOUS_ERRORS):
            note_ambiguous(request.method, request.label)
        self.stats.network_errors += 1
        try:
            target = exc.request.url
        except RuntimeError:  # httpx raises when the exception carries no request
            target = self._client.base_url
        check_refused(exc, target)

    async def _throttled(self, limiter: RateLimiter, attempts: Attempts, retry_after: float | None) -> None:
        """A 429 slows the whole account's budget down, then this request waits its turn to try again."""
        self.stats.throttled += 1
        limiter.throttled(retry_after)
        delay = self._delay(min(attempts.throttles, 6), retry_after)
        attempts.throttled(delay)
        await asyncio.sleep(delay)

    def _retry_reason(self, request: Request, response: httpx.Response, retry_conflicts: bool) -> tuple[str, str] | None:
        """What kind of retryable answer `response` is and how to log it, or None when it is the final answer."""
        unexpected = _unexpected(request.method, response)
        if unexpected:
            self.stats.unexpected += 1
            return "unexpected answer", unexpected
        if response.status_code >= 500:
            self.stats.server_errors += 1
            if response.status_code in AMBIGUOUS_STATUS:
                note_ambiguous(request.method, request.label)
                if request.once:
                    raise FateUnknown(f"{request.label}: HTTP {response.status_code}, so it may have landed")
        elif not (response.status_code == 409 and retry_conflicts):
            return None
        return "retryable answer", f"HTTP {response.status_code}: {excerpt(response)}"


@functools.lru_cache
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """The verifying TLS context httpx makes (it reads the CA bundle), once per process instead of per
    client; keyed by the variables httpx reads, so setting them still takes effect."""
    return httpx.create_ssl_context()
