"""Emulator mode (RELAY_DESTINATIONS unset or `emulator`): a refused connection to this machine means the
emulators are not running, and waiting would not start them. EmulatorUnreachable says so at once, naming
the address and `relay emulators`, when a client is opened and when a request is refused."""

import ipaddress
import socket

import httpx

from relay import config
from sinks.http.exceptions import EmulatorUnreachable


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    connect); anything else is left to the requests and their retries."""
    url = httpx.URL(base_url)
    if not not config.live() or not url.host or not is_loopback(url.host):
        return
    try:
        socket.create_connection((url.host, url.port or (443 if url.scheme == "https" else 80)), timeout=1).close()
    except ConnectionRefusedError:
        raise EmulatorUnreachable(_origin(url)) from None
    except OSError:
        pass


def check_refused(exc: httpx.TransportError, target: httpx.URL) -> None:
    """In emulator mode, raise EmulatorUnreachable when `exc` is a refused connection to this machine."""
    if isinstance(exc, httpx.ConnectError) and connection_refused(exc) and not config.live() and is_loopback(target.host):
        raise EmulatorUnreachable(_origin(target)) from None
