"""What a vendor module builds its routes from: endpoints, API errors, and reading a request.

Each emulator supplies only what differs: its state, its credential checks, its routes and how its vendor
shapes error bodies; `base.Emulator` runs every request through the shared pipeline.
"""

import base64
import binascii
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response


class ApiError(Exception):
    """An error answer; the emulator renders it in its vendor's error body shape.

    `fields` maps a field (or JSON pointer, or parameter name) to what is wrong with it.
    """

    def __init__(
        self,
        status: int,
        message: str,
        fields: Mapping[str, str] | None = None,
        *,
        reason: str = "invalid",
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = dict(fields or {})
        self.reason = reason
        self.headers = dict(headers or {})


Handler = Callable[[Request], Awaitable[Response]]
AuthCheck = Callable[[Request], None]  # raises ApiError(401/403) when the request may not pass
ErrorRenderer = Callable[[Request, ApiError], Response]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    auth: str  # which credential check guards it
    group: str  # which rate limit it draws from
    # Ids (from the request and its parsed body) the request holds while in flight (Talon.One 409).
    claims: Callable[[Request, Any], Iterable[str]] | None = None
    items: Callable[[Any], int] | None = None  # how many items an accepted body carried, for the counters


def same(given: str, expected: str) -> bool:
    """Constant-time comparison, so response timing leaks nothing about a key."""
    return hmac.compare_digest(given.encode(), expected.encode())


def basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def scheme_token(request: Request, scheme: str) -> str | None:
    """The credential after `scheme` in the Authorization header (e.g. Bearer, ApiKey-v1)."""
    given, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if given.lower() == scheme.lower() and value.strip() else None


async def json_body(request: Request) -> Any:
    """The request body parsed once (Starlette caches it); an empty body reads as None."""
    if not await request.body():
        return None
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "request body is not valid JSON", {"body": "invalid JSON"}) from None


def json_size(value: Any) -> int:
    """Bytes of the most compact JSON encoding of `value`, the way a size limit on a payload is met."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
