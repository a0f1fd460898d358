"""What arrived: request counters, and (opt-in) every request that reached a handler, for the tests' judge."""

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    route: str  # the route template, e.g. /v2/customer_profiles/{integrationId}
    path: str
    query: dict[str, str]
    body: Any  # the parsed JSON body; None when empty


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

    def writes(self) -> int:
        """Requests that could change the destination: every one but the reads (a preflight's probes are reads)."""
        return sum(n for route, n in self.by_route.items() if not route.startswith("GET "))

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
