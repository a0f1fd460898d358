"""The emulators, started one way for every test and bench script: in this process (`start` one,
`serve_emulators` all three) or in a process of their own (`EmulatorProcess`, which killing or loading a sync
process never touches).

The only module under tests/ and bench/ that names the emulator package or the demo credentials: when either
moves, the line that imports it here is the one to change.
"""

import contextlib
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from relay.config import EMULATOR_CREDENTIALS  # noqa: F401 (the demo credentials, for the tests)

from .ports import free_port
from .project import ROOT

PACKAGE = "emulators"  # served by `python -m PACKAGE`
_package = importlib.import_module(PACKAGE)
CordialConfig, CustomerIOConfig, TalonOneConfig = _package.CordialConfig, _package.CustomerIOConfig, _package.TalonOneConfig
EmulatorServer, RateLimit, create_app = _package.EmulatorServer, _package.RateLimit, _package.create_app
configs_from_args = importlib.import_module(f"{PACKAGE}.__main__").configs_from_args

NAMES = ("customerio", "cordial", "talon_one")
RATE_LIMITS_OFF = tuple(f"--rate-limit-{name}=0" for name in (
    "customerio", "customerio-app", "cordial", "talon-one", "talon-one-management"))


def start(config) -> EmulatorServer:
    """One emulator in this process on a free loopback port; stop() it after."""
    return EmulatorServer(create_app(config)).start()


@contextlib.contextmanager
def serve_emulators(*args: str, keys: dict[str, str] | None = None):
    """All three emulators in this process on free loopback ports, rate limits off, accepting `keys` (the demo
    credentials for any not given); `args`: more of `python -m PACKAGE`'s options. Yields {destination: server}."""
    configs, _ = configs_from_args([*RATE_LIMITS_OFF, *args], keys or {})
    servers = {}
    try:
        for name, config in zip(NAMES, configs):
            servers[name] = start(config)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def destination_env(urls: dict[str, str]) -> dict[str, str]:
    """The variables that point the destinations' clients at emulators at `urls` ({destination: url})."""
    return {"CUSTOMERIO_TRACK_URL": urls["customerio"], "CUSTOMERIO_APP_URL": urls["customerio"],
            "CORDIAL_API_URL": urls["cordial"], "TALON_ONE_BASE_URL": urls["talon_one"]}


def served_env(servers: dict) -> dict[str, str]:
    """The variables that point the destinations' clients at `servers` (serve_emulators'), with the client's
    Cordial budget out of reach as the emulators' rate limits are off."""
    return {**destination_env({name: server.url for name, server in servers.items()}),
            "CORDIAL_RATE_LIMIT_PER_MIN": "600000"}


def emulator_command(ports: dict[str, int], *args: str) -> list[str]:
    """`python -m PACKAGE` serving each destination on its port of `ports`, `args` appended."""
    command = [sys.executable, "-m", PACKAGE]
    for name, port in ports.items():
        command += [f"--{name.replace('_', '-')}-port", str(port)]
    return [*command, *args]


def wait_until_answering(urls, process: subprocess.Popen, timeout_s: float = 30) -> None:
    """Return once every emulator at `urls` answers; raise if `process` ends or the time runs out first."""
    deadline = time.monotonic() + timeout_s
    for url in urls:
        while True:
            try:
                httpx.get(f"{url}/_emulator/info", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None:
                    raise RuntimeError(f"the emulators exited ({process.returncode}) {process.communicate()[1] or ''}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nothing answered at {url}")
                time.sleep(0.05)


class EmulatorProcess:
    """The three emulators in a process of their own on free ports, rate limits off, `args` appended (e.g.
    --fault-5xx 0.1); `env`: more variables for it (credentials); `log`: a file for its output."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.ports = {name: free_port() for name in NAMES}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self._log = open(log, "ab") if log else subprocess.DEVNULL
        self.process = subprocess.Popen(emulator_command(self.ports, *RATE_LIMITS_OFF, *args), cwd=ROOT,
                                        env={**os.environ, **(env or {})}, stdout=self._log, stderr=self._log)
        try:
            wait_until_answering(self.urls.values(), self.process)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> "EmulatorProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
