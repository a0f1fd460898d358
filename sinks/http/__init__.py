"""HTTP done once for every destination: connection reuse, timeouts, one shared rate budget per
destination account, retries with exponential backoff and jitter, and secret redaction.

Retryable vs permanent is decided here and nowhere else:
  * retried: 429, 5xx, 409 when the destination says it is a concurrency conflict, timeouts and
    connection errors (including a connection dropped mid-response);
  * permanent: every other 4xx, handed back to the destination adapter to map onto rows;
  * unexpected, retried like a 5xx: answers no JSON API gives, which come from something between us
    and the API (a proxy, a captive portal): a redirect, or a 2xx whose body is not JSON, or, for a
    write, not a JSON object. Acting on them could mark rows delivered that never arrived;
  * not retried at all: a refused connection to this machine in emulator mode (see sinks.http.emulator),
    and an answer of unknown fate (a timeout, a dropped connection, 502/504) to a `Request(once=True)`: a
    write the destination would apply twice. It raises FateUnknown, and the caller finds out what landed.

A retried error is logged once, and again only when it changes; the final error says how many times it came.

One concern per module: client (HttpClient, Request and the retry loop), rate (the account's token bucket,
shared across processes), retries (backoff, Retry-After, unexpected answers, attempt limits), redaction
(REDACT, excerpt), exceptions, ambiguity (writes whose fate is unknown) and emulator (fail fast when the
emulators are not running). What other packages use is importable from sinks.http itself.
"""

from sinks.http.ambiguity import watch_ambiguity
from sinks.http.client import HttpClient, Request
from sinks.http.emulator import connection_refused, is_loopback
from sinks.http.exceptions import EmulatorUnreachable, FateUnknown, RetriesExhausted
from sinks.http.rate import RateLimiter, budget_dir, shared_limiter
from sinks.http.redaction import REDACT, excerpt

__all__ = [
    "REDACT",
    "EmulatorUnreachable",
    "FateUnknown",
    "HttpClient",
    "RateLimiter",
    "Request",
    "RetriesExhausted",
    "budget_dir",
    "connection_refused",
    "excerpt",
    "is_loopback",
    "shared_limiter",
    "watch_ambiguity",
]
