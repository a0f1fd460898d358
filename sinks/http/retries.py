"""When a request is tried again and how long it waits first: the server's own Retry-After when it gives
one, else exponential backoff with full jitter; failures and throttling each have a limit of their own."""

import json
import logging
import random

import httpx

from sinks.http.exceptions import RetriesExhausted
from sinks.http.redaction import REDACT, excerpt

log = logging.getLogger("relay.http")


def backoff_delay(attempt: int, retry_after: float | None, base_s: float, cap_s: float) -> float:
    """Seconds to wait before retry `attempt` (counted from 0), never more than `cap_s`."""
    if retry_after is not None:
        return min(cap_s, retry_after)
    # Full jitter: spreads retries of concurrent requests instead of synchronising them.
    return random.uniform(0, min(cap_s, base_s * 2**attempt))


def read_retry_after(response: httpx.Response) -> float | None:
    """The seconds the server asks us to wait (Retry-After, else X-Rate-Limit-Reset), or None."""
    for header in ("Retry-After", "X-Rate-Limit-Reset"):
        value = response.headers.get(header)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def _unexpected(method: str, response: httpx.Response) -> str | None:
    """Why an answer cannot be the API's own (see the sinks.http docstring), or None."""
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


class Attempts:
    """One request's failures and throttled waits so far, against their limits.

    A retried error is logged when it first comes and when it changes, not once per attempt; the final
    error says how many times it came."""

    def __init__(self, label: str, max_failures: int, max_throttle_wait_s: float) -> None:
        self.label = label
        self.max_failures = max_failures
        self.max_throttle_wait_s = max_throttle_wait_s
        self.failures = self.throttles = 0
        self.waited = 0.0
        self.last_error, self.repeats = "no attempt made", 0

    @property
    def retrying(self) -> bool:
        return bool(self.failures or self.throttles)

    def failed(self, what: str, error: str) -> None:
        """Count a failure; raises RetriesExhausted when it was the last one allowed."""
        if error == self.last_error:
            self.repeats += 1
        else:
            if self.repeats > 1:
                log.debug("%s on %s came %d times in a row", what, self.label, self.repeats)
            log.debug("%s on %s: %s", what, self.label, error)
            self.last_error, self.repeats = error, 1
        self.failures += 1
        if self.failures >= self.max_failures:
            same = f" ({self.repeats} times in a row)" if 1 < self.repeats < self.failures else ""
            raise RetriesExhausted(f"{self.label} failed {self.failures} times; last: {self.last_error}{same}")

    def throttled(self, delay: float) -> None:
        """Count a 429 waited out for `delay` seconds; raises RetriesExhausted once the waits pass their limit."""
        self.throttles += 1
        self.waited += delay
        if self.waited > self.max_throttle_wait_s:
            raise RetriesExhausted(f"{self.label} still throttled (HTTP 429) after waiting {self.waited:.0f}s")
