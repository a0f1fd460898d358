"""Injected failures: 5xx and 429 answers, dropped connections, stalls and added latency."""

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

SERVER_ERRORS = (500, 502, 503, 504)


@dataclass
class Faults:
    """Injected failures. Every probability is drawn per request from one RNG seeded by `seed`."""

    error_rate: float = 0.0  # answer 500/502/503/504 instead of handling the request
    drop_rate: float = 0.0  # close the connection without sending a response
    # 429 whatever our own pace: another client of the same account spent the limit (a vendor's limit is
    # per account or key, not per integration), so a client meets it however slowly it sends.
    throttle_rate: float = 0.0
    timeout_rate: float = 0.0  # stall timeout_s before handling (the client should give up first)
    timeout_s: float = 30.0
    latency_ms: float = 0.0  # added to every request
    spike_rate: float = 0.0  # probability of an extra spike_ms on top of latency_ms
    spike_ms: float = 0.0
    soft_error_rate: float = 0.0  # APIs with a 2xx-with-errors mode (Cordial): 200 + errors, nothing applied
    seed: int | None = None


class Dropped(Response):
    """Answer nothing: the connection was aborted, so the server must not write a response."""

    def __init__(self) -> None:
        super().__init__(status_code=499)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        return None


async def drop_connection(request: Request) -> Response:
    # uvicorn keeps the transport out of the ASGI scope, but its `receive` is a bound method of the
    # request cycle that owns it. Aborting it before any byte is written makes httpx raise
    # RemoteProtocolError ("Server disconnected without sending a response").
    transport = getattr(getattr(request.receive, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("emulated dropped connection")  # not under uvicorn: fail loudly
    transport.abort()
    await asyncio.sleep(0)  # let the server register the disconnect before the endpoint returns
    return Dropped()
