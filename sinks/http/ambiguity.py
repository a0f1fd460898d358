"""Writes whose fate is unknown: the server may still apply them, later than our retry and after newer writes.
A caller that cares (one asyncio task) watches for them and re-asserts those records once that can no longer happen."""

import contextlib
import contextvars

import httpx

# Answers after which a write's fate is unknown.
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


def note_ambiguous(method: str, label: str) -> None:
    """Record a write (not a read) that met an ambiguous answer, for whoever watches in this task."""
    seen = _ambiguous.get()
    if seen is not None and method != "GET":
        seen.append(label)
