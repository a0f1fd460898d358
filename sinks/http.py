"""HTTP done once for every destination: connection reuse, timeouts, one shared rate budget per
destination account, retries with exponential backoff and jitter, and secret redaction.

Retryable vs permanent is decided here and nowhere else:
  * retried: 429, 5xx, 409 when the destination says it is a concurrency conflict, timeouts and
    connection errors (including a connection dropped mid-response);
  * permanent: every other 4xx, handed back to the destination adapter to map onto rows;
  * unexpected, retried like a 5xx: answers no JSON API gives, which come from something between us
    and the API (a proxy, a captive portal): a redirect, or a 2xx whose body is not JSON, or, for a
    write, not a JSON object. Acting on them could mark rows delivered that never arrived;
  * not retried at all: a refused connection to this machine in emulator mode (RELAY_DESTINATIONS unset or
    `emulator`). The emulators are not running, and waiting would not start them: EmulatorUnreachable says
    so at once, naming the address and `relay emulators`. A client checks this when it is opened, too.

A retried error is logged once, and again only when it changes; the final error says how many times it came.

The rate budget of a destination account is shared by every process on the machine: the token bucket
lives in a 40-byte file under $RELAY_DATA_DIR/rate_budgets/, named by a hash of account, host and route
group (an account string can carry a site id), and every take is a read-modify-write under flock.
"""

import asyncio
import contextlib
import contextvars
import fcntl
import functools
import hashlib
import html
import ipaddress
import json
import logging
import math
import os
import random
import re
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

log = logging.getLogger("relay.http")
# httpx logs every request line, full URL included, at INFO; a URL can address a contact by email
# (Cordial). Our own logs name requests by Request.label instead.
logging.getLogger("httpx").setLevel(logging.WARNING)

RETRYABLE_STATUS = {429, 500, 502, 503, 504}
# Answers after which a write's fate is unknown: the server may still apply it, later than our retry.
AMBIGUOUS_ERRORS = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)
AMBIGUOUS_STATUS = {502, 504}
# Set by a caller (one asyncio task) that wants to know whether any write it sent met such an answer.
_ambiguous: contextvars.ContextVar[list | None] = contextvars.ContextVar("relay_ambiguous", default=None)


@contextlib.contextmanager
def watch_ambiguity():
    """Within the block (in this task), yields a list that becomes non-empty once a write sent through any
    HttpClient timed out or lost its connection after being sent, or met a gateway error: the server may
    apply it later, after newer writes. The caller must re-assert those records once that can no longer
    happen."""
    seen: list = []
    token = _ambiguous.set(seen)
    try:
        yield seen
    finally:
        _ambiguous.reset(token)


def _note_ambiguous(request: "Request") -> None:
    seen = _ambiguous.get()
    if seen is not None and request.method != "GET":
        seen.append(request.label)


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

    def excerpt(self, text: object, limit: int) -> str:
        """At most `limit` characters of `text` (and '...' if cut), redacted before the cut: cutting first could
        split a secret, and no half of it would match."""
        text = self(text)
        return text if len(text) <= limit else text[:limit] + "..."


REDACT = Redactor()


# tokens, stamp, rate, last_raise, pause_until: wall-clock seconds, so every process reads them alike.
_BUCKET = struct.Struct("<5d")
IDLE_RESET_S = 60.0  # a budget nobody drew from for this long is back at its ceiling
MAX_PAUSE_S = 600.0


def budget_dir() -> Path:
    """Where rate budgets are shared: the data directory, resolved as relay.config does."""
    return Path(os.environ.get("RELAY_DATA_DIR") or Path(__file__).resolve().parents[1] / "data") / "rate_budgets"


class RateLimiter:
    """Token bucket shared by every sync talking to one destination account, in every process.

    Adaptive: a 429 halves the rate for a while (the destinations that publish no Retry-After give no
    better signal) and pauses every process for its Retry-After; the rate climbs back by 10% per second
    of clean responses up to the ceiling. With a `path`, the bucket's state lives in that file and is
    changed only under an exclusive flock held for a few microseconds (never while sleeping). Processes
    are expected to configure one account with one ceiling (they read it from the same environment);
    each refills at most at its own. Without a path, or when the file cannot be used, the bucket is this
    process's own.
    """

    def __init__(self, rate_per_s: float, burst: float | None = None, path: Path | None = None) -> None:
        self.ceiling = rate_per_s
        self.burst = burst or max(1.0, rate_per_s / 10)
        self.path = path
        now = time.time()
        self._local = [self.burst, now, rate_per_s, now, 0.0]
        self._fd: int | None = None
        self._fd_pid = 0
        # flock does not tell apart threads sharing one descriptor (two syncs run from threads).
        self._thread_lock = threading.Lock()
        self._lock: asyncio.Lock | None = None
        self._loop = None

    @property
    def rate(self) -> float:
        with self._state() as s:
            return s[2]

    def _loop_lock(self) -> asyncio.Lock:
        # Each sync run has its own event loop; an asyncio.Lock belongs to the loop that first used it.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._lock = loop, asyncio.Lock()
        return self._lock

    def _open(self) -> int | None:
        if self.path is None:
            return None
        if self._fd is None or self._fd_pid != os.getpid():  # a forked child needs a descriptor (and lock) of its own
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                self._fd_pid = os.getpid()
            except OSError as exc:
                log.warning("rate budget file %s is unusable (%s): this process keeps a budget of its own", self.path, exc)
                self.path = self._fd = None
        return self._fd

    @contextlib.contextmanager
    def _state(self):
        """The bucket's numbers, locked against other threads and processes; written back on exit."""
        with self._thread_lock:
            fd = self._open()
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except OSError as exc:  # e.g. a file system without locks
                    log.warning("rate budget file %s cannot be locked (%s): this process keeps a budget of its own",
                                self.path, exc)
                    self.path = fd = None
            if fd is None:
                yield self._local
                return
            try:
                raw = os.pread(fd, _BUCKET.size, 0)
                state = list(_BUCKET.unpack(raw)) if len(raw) == _BUCKET.size else []
                if not state or not all(math.isfinite(v) for v in state) or state[2] <= 0:
                    now = time.time()
                    state = [self.burst, now, self.ceiling, now, 0.0]  # new (or damaged): a full bucket
                yield state
                os.pwrite(fd, _BUCKET.pack(*state), 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _take(self, s: list[float], now: float) -> float:
        """Take a token: 0 when taken, else the seconds to wait before trying again."""
        tokens, stamp, rate, last_raise, pause_until = s
        stamp, last_raise = min(stamp, now), min(last_raise, now)  # the wall clock may have gone back
        pause_until = min(pause_until, now + MAX_PAUSE_S)
        rate = min(self.ceiling, max(self.ceiling / 50, rate))
        wait = pause_until - now
        if wait <= 0:
            if now - stamp >= IDLE_RESET_S:
                rate = self.ceiling
            elif rate < self.ceiling and now - last_raise >= 1.0:
                rate = min(self.ceiling, rate * 1.1)
                last_raise = now
            tokens = min(self.burst, tokens + (now - stamp) * rate)
            stamp = now
            if tokens >= 1:
                tokens, wait = tokens - 1, 0.0
            else:
                wait = (1 - tokens) / rate
        s[:] = [tokens, stamp, rate, last_raise, pause_until]
        return wait

    async def acquire(self) -> None:
        async with self._loop_lock():
            while True:
                with self._state() as s:
                    wait = self._take(s, time.time())
                if wait <= 0:
                    return
                await asyncio.sleep(wait)

    def throttled(self, retry_after: float | None) -> None:
        with self._state() as s:
            now = time.time()
            s[2] = max(self.ceiling / 50, min(self.ceiling, s[2]) / 2)
            s[0], s[1], s[3] = 0.0, now, now
            if retry_after:
                s[4] = max(s[4], now + min(retry_after, MAX_PAUSE_S))


_LIMITERS: dict[tuple[str, str, Path], RateLimiter] = {}


def shared_limiter(account: str, group: str, rate_per_s: float) -> RateLimiter:
    """One limiter per (account, route group) in this process, whatever the number of syncs; its bucket
    is shared with every other process using the same data directory."""
    directory = budget_dir()
    key = (account, group, directory)
    limiter = _LIMITERS.get(key)
    if limiter is None or limiter.ceiling != rate_per_s:  # the latest configuration wins
        digest = hashlib.sha256(f"{account}\n{group}".encode()).hexdigest()[:32]
        limiter = _LIMITERS[key] = RateLimiter(rate_per_s, path=directory / f"{digest}.bucket")
    return limiter


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    server_errors: int = 0
    network_errors: int = 0
    unexpected: int = 0  # answers no JSON API gives (see the module docstring)
    statuses: dict[int, int] = field(default_factory=dict)


class RetriesExhausted(RuntimeError):
    """A request kept failing with retryable errors; its rows stay unacknowledged for the next run."""


class EmulatorUnreachable(RetriesExhausted):
    """Emulator mode, and nothing listens at the emulator's address on this machine: not worth a retry."""

    def __init__(self, origin: str) -> None:
        super().__init__(f"nothing is listening at {origin} (connection refused), where RELAY_DESTINATIONS=emulator "
                         f"expects a destination emulator: start the emulators with `relay emulators` "
                         f"(RELAY_EMULATOR_HOST and RELAY_EMULATOR_BASE_PORT move them)")


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _emulator_mode() -> bool:
    return os.environ.get("RELAY_DESTINATIONS", "emulator") != "live"


def connection_refused(exc: BaseException) -> bool:
    """Whether the connection was refused (nothing listens there), anywhere in the exception's chain."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ConnectionRefusedError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _origin(url: httpx.URL) -> str:
    """scheme://host:port, without any credentials a URL may carry."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}:{url.port or (443 if url.scheme == 'https' else 80)}"


def check_listening(base_url: str) -> None:
    """In emulator mode, raise EmulatorUnreachable when nothing listens at a loopback `base_url` (one local
    connect, well under a millisecond); anything else is left to the requests and their retries."""
    url = httpx.URL(base_url)
    if not _emulator_mode() or not url.host or not is_loopback(url.host):
        return
    try:
        socket.create_connection((url.host, url.port or (443 if url.scheme == "https" else 80)), timeout=1).close()
    except ConnectionRefusedError:
        raise EmulatorUnreachable(_origin(url)) from None
    except OSError:
        pass


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

    @property
    def label(self) -> str:
        """Method and path for logs and errors, without customer data: a path addressing a contact by
        email (Cordial's `/v2/contacts/email:<address>`) names the contact only as <contact>."""
        return f"{self.method} {_ADDRESSED.sub('<contact>', self.url)}"


_ADDRESSED = re.compile(r"[^/?#]*@[^/?#]*")


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
        last_error, repeats = "no attempt made", 0

        def failed(error: str, what: str) -> None:
            # A retried error is logged when it first comes and when it changes, not once per attempt.
            nonlocal last_error, repeats
            if error == last_error:
                repeats += 1
                return
            if repeats > 1:
                log.debug("%s on %s came %d times in a row", what, request.label, repeats)
            log.debug("%s on %s: %s", what, request.label, error)
            last_error, repeats = error, 1

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
                if isinstance(exc, AMBIGUOUS_ERRORS):
                    _note_ambiguous(request)
                self.stats.network_errors += 1
                try:
                    target = exc.request.url
                except RuntimeError:  # httpx raises when the exception carries no request
                    target = self._client.base_url
                if (isinstance(exc, httpx.ConnectError) and connection_refused(exc) and _emulator_mode()
                        and is_loopback(target.host)):
                    raise EmulatorUnreachable(_origin(target)) from None
                failed(f"{type(exc).__name__}: {REDACT(exc)}", "network error")
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
                        raise RetriesExhausted(f"{request.label} still throttled (HTTP 429) after "
                                               f"waiting {waited:.0f}s")
                    await asyncio.sleep(delay)
                    continue
                unexpected = _unexpected(request.method, response)
                if unexpected:
                    self.stats.unexpected += 1
                    failed(unexpected, "unexpected answer")
                else:
                    if response.status_code >= 500:
                        self.stats.server_errors += 1
                        if response.status_code in AMBIGUOUS_STATUS:
                            _note_ambiguous(request)
                    elif not (response.status_code == 409 and retry_conflicts):
                        return response
                    failed(f"HTTP {response.status_code}: {excerpt(response)}", "retryable answer")
            failures += 1
            if failures >= self.max_attempts:
                same = f" ({repeats} times in a row)" if 1 < repeats < failures else ""
                raise RetriesExhausted(f"{request.label} failed {failures} times; last: {last_error}{same}")
            await asyncio.sleep(self._delay(failures - 1, retry_after))


@functools.lru_cache
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """The verifying TLS context httpx makes (it reads the CA bundle, ~15 ms), once per process instead of per
    client; keyed by the variables httpx reads, so setting them still takes effect."""
    return httpx.create_ssl_context()


def _retry_after(response: httpx.Response) -> float | None:
    for header in ("Retry-After", "X-Rate-Limit-Reset"):
        value = response.headers.get(header)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def excerpt(response: httpx.Response, limit: int = 160) -> str:
    """A short, redacted, one-line excerpt of a body: an HTML page is reduced to its text."""
    text = response.text
    if "html" in response.headers.get("content-type", "") or text.lstrip()[:1] == "<":
        text = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", text)
        text = html.unescape(re.sub(r"(?s)<[^>]*>", " ", text))
    # Redacted after unescaping (an HTML entity can spell out part of a secret) and before the cut.
    text = REDACT.excerpt(" ".join(text.split()), limit)
    return repr(text) if text else "(empty body)"


def _unexpected(method: str, response: httpx.Response) -> str | None:
    """Why an answer cannot be the API's own (see the module docstring), or None."""
    status = response.status_code
    kind = response.headers.get("content-type", "").split(";")[0].strip() or "no content type"
    if 300 <= status < 400:
        return f"HTTP {status} redirect to {REDACT.excerpt(response.headers.get('location', 'nowhere'), 200)} ({kind}): {excerpt(response)}"
    if not 200 <= status < 300 or not response.content.strip():
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"HTTP {status} with a body that is not JSON ({kind}): {excerpt(response)}"
    if method != "GET" and not isinstance(body, dict):
        return f"HTTP {status} with a JSON {type(body).__name__} where an object was expected: {excerpt(response)}"
    return None
