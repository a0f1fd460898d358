"""Rate limits: a token bucket per route group (or per route), with the headers some vendors send."""

import math
import time
from dataclasses import dataclass


@dataclass
class RateLimit:
    """A token bucket: `limit` requests per `window_s`, refilled continuously; limit 0 disables it."""

    limit: int
    window_s: float = 1.0
    per_route: bool = False  # one bucket per method+route (Cordial, Talon.One Management) instead of per group
    headers: bool = False  # X-Rate-Limit-* on every answer and Retry-After on 429, as Cordial documents


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
