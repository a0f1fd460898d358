"""Serving emulator apps: one in a background thread (tests), or several in one process (`python -m emulators`)."""

import asyncio
import contextlib
import errno
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import uvicorn
from starlette.applications import Starlette

from .base import Emulator
from .recording import RecordedRequest


def _uvicorn_config(app: Starlette, **kwargs: Any) -> uvicorn.Config:
    # http="auto" picks httptools and loop="auto" picks uvloop when installed.
    return uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2, **kwargs
    )


class EmulatorServer:
    """Serve one emulator app on 127.0.0.1 in a background thread (port 0 picks a free port)."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self.emulator: Emulator = app.state.emulator
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.url = f"http://{host}:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(_uvicorn_config(app))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="emulator", daemon=True
        )

    @property
    def state(self) -> Any:
        return self.emulator.state

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request that reached a handler; needs EmulatorConfig.record_requests."""
        if self.emulator.recorded is None:
            raise RuntimeError("request recording is off: set record_requests=True in the emulator's config")
        return list(self.emulator.recorded)

    def start(self) -> "EmulatorServer":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"emulator at {self.url} failed to start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving; the app's shutdown saves its state file."""
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _SharedSignalServer(uvicorn.Server):
    # Several servers share one process: the runner handles SIGINT/SIGTERM for all of them at once.
    @contextlib.contextmanager
    def capture_signals(self):
        yield


class CannotListen(OSError):
    """A port the emulators were asked to serve on cannot be bound (in use, or an address not of this machine)."""


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, or CannotListen naming them."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = "the address is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise CannotListen(exc.errno, f"cannot listen on {host}:{port}: {reason}") from None


def run_servers(apps: Iterable[tuple[Starlette, int]], host: str = "127.0.0.1",
                listening: Callable[[], None] | None = None) -> None:
    """Serve each (app, port) in one event loop until SIGINT/SIGTERM; shutdown saves every state file.
    Every port is bound before anything is served: one that cannot be raises CannotListen, and nothing starts."""
    apps = list(apps)
    sockets: list[socket.socket] = []
    try:
        for _, port in apps:
            sockets.append(listen(host, port))
    except CannotListen:
        for sock in sockets:
            sock.close()
        raise
    if listening is not None:
        listening()
    servers = [_SharedSignalServer(_uvicorn_config(app, host=host, port=port)) for app, port in apps]

    def stop_all() -> None:
        for server in servers:
            server.should_exit = True

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_all)
        await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in zip(servers, sockets)))

    with asyncio.Runner(loop_factory=servers[0].config.get_loop_factory()) as runner:
        runner.run(main())
