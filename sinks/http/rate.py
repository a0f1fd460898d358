"""One rate budget per destination account, shared by every process on the machine: the token bucket lives
in a 40-byte file under $RELAY_DATA_DIR/rate_budgets/, named by a hash of account, host and route group (an
account string can carry a site id), and every take is a read-modify-write under flock."""

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import math
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

from relay import config

log = logging.getLogger("relay.http")

# tokens, stamp, rate, last_raise, pause_until: wall-clock seconds, so every process reads them alike.
_BUCKET = struct.Struct("<5d")
IDLE_RESET_S = 60.0  # a budget nobody drew from for this long is back at its ceiling
MAX_PAUSE_S = 600.0


def budget_dir() -> Path:
    """Where rate budgets are shared, by every process using this data directory."""
    return config.data_dir() / "rate_budgets"


class RateLimiter:
    """Token bucket shared by every sync talking to one destination account, in every process.

    Adaptive: a 429 halves the rate for a while (the destinations that publish no Retry-After give no
    better signal) and pauses every process for its Retry-After; the rate climbs back by 10% per second
    of clean responses up to the ceiling. With a `path`, the bucket's state lives in that file and is
    changed only under an exclusive flock, held while its numbers are read and written (never while
    sleeping). Processes are expected to configure one account with one ceiling (they read it from the
    same environment); each refills at most at its own. Without a path, or when the file cannot be used,
    the bucket is this process's own. `clock` gives wall-clock seconds (the file is read by other processes).
    """

    def __init__(self, rate_per_s: float, burst: float | None = None, path: Path | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.ceiling = rate_per_s
        self.burst = burst or max(1.0, rate_per_s / 10)
        self.path = path
        self._clock = clock
        now = clock()
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
                    now = self._clock()
                    state = [self.burst, now, self.ceiling, now, 0.0]  # new (or damaged): a full bucket
                yield state
                os.pwrite(fd, _BUCKET.pack(*state), 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def take(self) -> float:
        """Take a token now: 0 when taken, else the seconds to wait before trying again."""
        with self._state() as s:
            now = self._clock()
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
            while (wait := self.take()) > 0:
                await asyncio.sleep(wait)

    def throttled(self, retry_after: float | None) -> None:
        """A 429: halve the rate, empty the bucket and pause every taker for `retry_after` seconds (capped)."""
        with self._state() as s:
            now = self._clock()
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
