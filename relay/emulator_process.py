"""The emulators as a child process of a command: find ones this process can use, or start its own.

The emulators are a package of their own (`python -m emulators`); this module talks to them only over HTTP
(GET /_emulator/info, /_emulator/auth/<group>) and through their command line, never by importing them.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from relay import config
from sinks import destinations
from sinks.http import connection_refused, is_loopback

EMULATORS = tuple(config.EMULATOR_PORTS)
STARTUP_TIMEOUT_S = 30  # to answer, besides loading the saved state
# Loading a saved state is JSON parsing, on any machine slower than this: a large state (a sync of a million
# people) gets the time it needs, and a hang is still caught.
STATE_LOAD_BYTES_PER_S = 10_000_000


def state_dir() -> Path:
    """Where this data directory's emulators keep their state and log."""
    return config.data_dir() / "emulators"


def probe_emulator(name: str, url: str) -> tuple[str, str]:
    """What answers at `url` in place of destination `name`'s emulator, for this process:
    ("usable", pid): an emulator serving this data directory's state that accepts this process's credentials;
    ("free", ""): nothing listens there;
    ("refuses", variables): this data directory's emulator, started with other credentials;
    ("other", what): anything else (another data directory's emulator, or not an emulator at all)."""
    expected = str((state_dir() / f"{name}.json").resolve())
    try:
        response = httpx.get(f"{url}/_emulator/info", timeout=1)
        info = response.json() if response.status_code == 200 else None
    except httpx.ConnectError as exc:
        return ("free", "") if connection_refused(exc) else ("other", f"cannot connect ({exc})")
    except (httpx.HTTPError, ValueError):
        info = None
    if not isinstance(info, dict) or "state_file" not in info:
        return "other", "something that is not a Relay emulator"
    if info["state_file"] != expected:
        return "other", f"an emulator serving {info.get('state_dir') or 'no state directory'}"
    for group, (variables, header) in destinations.emulator_credential_checks(name).items():
        if group in info.get("auth_groups", ()):
            try:
                answer = httpx.get(f"{url}/_emulator/auth/{group}", headers={"Authorization": header}, timeout=2)
            except httpx.HTTPError:
                return "other", "an emulator that did not answer a credential check"
            if answer.status_code != 200:
                return "refuses", variables
    return "usable", str(info.get("pid"))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family)


def _can_listen(host: str, ports) -> bool:
    sockets = []
    try:
        for port in ports:
            sockets.append(_bind(host, port))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()


def _free_ports(host: str) -> dict[str, int]:
    sockets = [_bind(host, 0) for _ in EMULATORS]
    try:
        return {name: sock.getsockname()[1] for name, sock in zip(EMULATORS, sockets)}
    finally:
        for sock in sockets:
            sock.close()


def _start_emulators(host: str, ports: dict[str, int]) -> subprocess.Popen | None:
    """`python -m emulators` for this data directory on `ports`; the process once all three answer to this
    process's credentials, None when it could not listen. Its log: <data dir>/emulators/emulators.log."""
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "emulators.log"
    command = [sys.executable, "-m", "emulators", "--state-dir", str(directory), "--host", host,
               "--log-level", "WARNING"]
    for name, port in ports.items():
        command += [f"--{name.replace('_', '-')}-port", str(port)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, env=os.environ.copy(), start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=log)
    urls = {name: config.http_url(host, port) for name, port in ports.items()}
    saved = sum(f.stat().st_size for f in directory.glob("*.json*"))  # snapshots and their journals
    timeout = STARTUP_TIMEOUT_S + saved / STATE_LOAD_BYTES_PER_S
    deadline = time.monotonic() + timeout
    while True:
        found = {name: probe_emulator(name, url) for name, url in urls.items()}
        if all(found[n] == ("usable", str(process.pid)) for n in EMULATORS):
            return process
        if process.poll() is not None:
            if process.returncode == os.EX_TEMPFAIL:  # python -m emulators: a port cannot be bound
                return None
            raise RuntimeError(f"the destination emulators exited ({process.returncode}); see {log_path}")
        if time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"the destination emulators did not start within {timeout:.0f} s (saved state: "
                               f"{saved / 1e6:.0f} MB); see {log_path}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def emulators_needed(names=EMULATORS) -> bool:
    """Whether any of these destinations calls its emulator here (emulator mode, no *_URL override), on this
    machine, with autostart on (RELAY_EMULATOR_AUTOSTART=0 turns it off)."""
    if os.environ.get("RELAY_EMULATOR_AUTOSTART", "1") in ("0", "false", "no"):
        return False
    return is_loopback(config.emulator_host()) and any(destinations.uses_emulator(n) for n in names)


def _refuse_half_running(found: dict[str, tuple[str, str]]) -> None:
    """This data directory's emulators are up but not all usable: a second set would write the same state files."""
    refused = [f"{n} at {config.emulator_url(n)} refuses {what}" for n, (state, what) in found.items()
               if state == "refuses"]
    missing = [f"{n} at {config.emulator_url(n)}" for n, (state, _) in found.items() if state in ("free", "other")]
    why = (f"they were started with other credentials ({'; '.join(refused)})" if refused else
           f"some do not answer ({', '.join(missing)})")
    raise RuntimeError(f"the emulators of {state_dir()} are running, but {why}. Stop them, then start them again "
                       f"with this environment: relay emulators")


def _start_own(host: str, found: dict[str, tuple[str, str]]) -> tuple[subprocess.Popen, dict[str, int]]:
    """Emulators of this process: on the configured ports if they are free, else on free ones (and say why)."""
    ports = {name: config.emulator_port(name) for name in EMULATORS}
    holders: dict[str, list[str]] = {}  # what holds configured ports -> those ports
    for name, (state, what) in found.items():
        if state == "other":
            holders.setdefault(what, []).append(str(ports[name]))
    taken = [f"{host} port {', '.join(held)} has {what}" for what, held in holders.items()]
    process = None
    if not taken:
        if _can_listen(host, ports.values()):
            process = _start_emulators(host, ports)
        taken = [] if process else [f"{host} ports {', '.join(map(str, ports.values()))} cannot all be bound"]
    if process is None:  # taken, or taken meanwhile: free ports, told to the clients by running_emulators
        ports = _free_ports(host)
        process = _start_emulators(host, ports)
        if process is None:
            raise RuntimeError(f"the destination emulators could not listen on {host}; see {state_dir() / 'emulators.log'}")
    where = ", ".join(f"{n} {config.http_url(host, p)}" for n, p in ports.items())
    print(f"relay: started the emulators of {state_dir()} ({where})" + (f", because {'; '.join(taken)}" if taken else ""),
          file=sys.stderr)
    return process, ports


@contextmanager
def _clients_pointed_at(host: str, ports: dict[str, int]):
    """For the block, this process's environment (and so its children's) points the clients at host:ports."""
    saved = {var: os.environ.get(var) for var in
             ["RELAY_EMULATOR_HOST", *(f"RELAY_EMULATOR_{n.upper()}_PORT" for n in EMULATORS)]}
    os.environ["RELAY_EMULATOR_HOST"] = host
    for name, port in ports.items():
        os.environ[f"RELAY_EMULATOR_{name.upper()}_PORT"] = str(port)
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


@contextmanager
def running_emulators(needed: bool = True):
    """For the block, emulators this process can use: the ones at the configured address (RELAY_EMULATOR_HOST,
    RELAY_EMULATOR_BASE_PORT) when they serve this data directory and accept this process's credentials, else
    emulators of its own, on the configured ports if they are free and on free ones if not. The environment of
    this process (and of what it starts) then points the clients at them."""
    if not needed:
        yield
        return
    found = {name: probe_emulator(name, config.emulator_url(name)) for name in EMULATORS}
    states = {state for state, _ in found.values()}
    if states == {"usable"}:
        yield
        return
    if states & {"usable", "refuses"}:
        _refuse_half_running(found)
    host = config.emulator_host()
    process, ports = _start_own(host, found)
    try:
        with _clients_pointed_at(host, ports):
            yield
    finally:
        _stop(process)
