"""`python -m emulators`: serve the three emulators until SIGINT/SIGTERM.

Address, ports, state directory, rate limits and faults come from arguments. The address and ports default
to what the clients call (relay.config.emulator_url): RELAY_EMULATOR_HOST, RELAY_EMULATOR_BASE_PORT and
RELAY_EMULATOR_<NAME>_PORT, else 127.0.0.1:8701-8703. Credentials come from the
environment (CUSTOMERIO_SITE_ID, CUSTOMERIO_TRACK_API_KEY, CUSTOMERIO_APP_API_KEY, CUSTOMERIO_REGION,
CORDIAL_API_KEY, TALON_ONE_INTEGRATION_KEY, TALON_ONE_MANAGEMENT_KEY). A variable that is unset falls back
to the demo credential the destination adapters also use against the emulators. Credentials are never
printed; the log names only which variables fell back to the demo values.
"""

import argparse
import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from relay.config import (
    EMULATOR_CREDENTIALS,
    EMULATOR_PORTS,
    ConfigError,
    customerio_region,
    emulator_host,
    emulator_port,
)

from . import CordialConfig, CustomerIOConfig, EmulatorConfig, Faults, RateLimit, TalonOneConfig, create_app
from .server import CannotListen, run_servers

log = logging.getLogger("emulators")
# A port is taken (or the address is not this machine's): nothing was served. EX_TEMPFAIL, so that whoever
# starts the emulators knows it without importing them.
EXIT_CANNOT_LISTEN = os.EX_TEMPFAIL


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emulators", description=(
        "Serve the Customer.io, Cordial and Talon.One emulators until SIGINT/SIGTERM. Credentials come from the "
        "environment as the clients read them (CUSTOMERIO_SITE_ID, CORDIAL_API_KEY, ...; demo values when unset)."))
    where = p.add_argument_group(
        "address (defaults: RELAY_EMULATOR_HOST, RELAY_EMULATOR_BASE_PORT, RELAY_EMULATOR_<NAME>_PORT, which the "
        "clients read too; else 127.0.0.1:8701-8703)")
    where.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    where.add_argument("--base-port", type=_port, metavar="N",
                       help="Customer.io on N, Cordial on N+1, Talon.One on N+2 (default 8701)")
    for name, label in zip(EMULATOR_PORTS, ("Customer.io", "Cordial", "Talon.One")):
        where.add_argument(f"--{name.replace('_', '-')}-port", type=_port, metavar="PORT",
                           help=f"{label}'s port (overrides --base-port)")
    p.add_argument("--state-dir", type=Path,
                   help="keep each emulator's state across restarts: <dir>/<name>.json and the journal of changes beside it")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="WARNING: only problems (default INFO: also the addresses)")
    p.add_argument("--save-interval", type=float, default=2.0, help="seconds between state saves after changes")
    p.add_argument("--record-requests", action="store_true",
                   help="keep every request for GET /_emulator/requests (memory grows with every body)")
    limits = p.add_argument_group("rate limits (0 disables one)")
    limits.add_argument("--rate-limit-customerio", type=int, default=100, help="Track API requests per second")
    limits.add_argument("--rate-limit-customerio-app", type=int, default=10, help="App API requests per second")
    limits.add_argument("--rate-limit-cordial", type=int, default=6000, help="requests per minute per endpoint")
    limits.add_argument("--rate-limit-talon-one", type=int, default=300, help="Integration API requests per second")
    limits.add_argument("--rate-limit-talon-one-management", type=int, default=3, help="per second per endpoint")
    faults = p.add_argument_group("faults (probabilities per request, 0..1)")
    faults.add_argument("--fault-5xx", type=float, default=0.0, help="answer 500/502/503/504")
    faults.add_argument("--fault-429", type=float, default=0.0,
                        help="answer 429 whatever the pace (another client spent the account's limit)")
    faults.add_argument("--fault-drop", type=float, default=0.0, help="close the connection without answering")
    faults.add_argument("--fault-timeout", type=float, default=0.0, help="stall --timeout-s before answering")
    faults.add_argument("--timeout-s", type=float, default=30.0)
    faults.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    faults.add_argument("--spike-rate", type=float, default=0.0, help="probability of an extra --spike-ms")
    faults.add_argument("--spike-ms", type=float, default=0.0)
    faults.add_argument("--cordial-soft-errors", type=float, default=0.0, help="Cordial: 200 with errors, not applied")
    faults.add_argument("--seed", type=int, help="seed of the fault RNG, for repeatable runs")
    p.add_argument("--cordial-secondary-key", action="append", default=[], metavar="KEY",
                   help="a unique Cordial contact attribute usable as <KEY>:<value> (repeatable)")  # fmt: skip
    return p


def address(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, dict[str, int]]:
    """The host and each destination's port: an option, else the variables the clients read, else the default."""
    ports = {}
    for offset, name in enumerate(EMULATOR_PORTS):
        port = getattr(args, f"{name}_port")
        if port is None and args.base_port is not None:
            port = args.base_port + offset
        ports[name] = port if port is not None else emulator_port(name, environ)
    if max(ports.values()) > 65535:
        raise ConfigError(f"--base-port {args.base_port} leaves no room for three ports")
    return args.host or emulator_host(environ), ports


def credentials(environ: Mapping[str, str]) -> dict[str, str]:
    """Each credential variable's value, or the demo value the clients also fall back to (named in the log)."""
    defaulted = sorted(name for name in EMULATOR_CREDENTIALS if not environ.get(name))
    if defaulted:
        log.info("demo credentials in use for: %s", ", ".join(defaulted))
    return {name: environ.get(name) or demo for name, demo in EMULATOR_CREDENTIALS.items()}


def faults_from_args(args: argparse.Namespace) -> Faults:
    return Faults(
        error_rate=args.fault_5xx,
        drop_rate=args.fault_drop,
        throttle_rate=args.fault_429,
        timeout_rate=args.fault_timeout,
        timeout_s=args.timeout_s,
        latency_ms=args.latency_ms,
        spike_rate=args.spike_rate,
        spike_ms=args.spike_ms,
        seed=args.seed,
    )


def configs_from_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> tuple[list[EmulatorConfig], str]:
    """The three emulator configs (and the host) from command-line arguments and environment variables."""
    p = parser()
    return configs_from_namespace(p.parse_args(argv), environ, p)


def configs_from_namespace(args: argparse.Namespace, environ: Mapping[str, str],
                           parser: argparse.ArgumentParser) -> tuple[list[EmulatorConfig], str]:
    try:
        host, ports = address(args, environ)
        region = customerio_region(environ)
    except ConfigError as exc:
        parser.error(str(exc))
    env = credentials(environ)
    faults = faults_from_args(args)

    def common(name: str, port: int, **fault_overrides: float) -> dict:
        return {
            "port": port,
            "faults": dataclasses.replace(faults, **fault_overrides),
            "state_file": args.state_dir / f"{name}.json" if args.state_dir else None,
            "save_interval_s": args.save_interval,
            "record_requests": args.record_requests,
        }

    configs: list[EmulatorConfig] = [
        CustomerIOConfig(
            site_id=env["CUSTOMERIO_SITE_ID"],
            track_api_key=env["CUSTOMERIO_TRACK_API_KEY"],
            app_api_key=env["CUSTOMERIO_APP_API_KEY"],
            region=region,
            rate_limits={
                "track": RateLimit(args.rate_limit_customerio),
                "app": RateLimit(args.rate_limit_customerio_app),
            },
            **common("customerio", ports["customerio"]),
        ),
        CordialConfig(
            api_key=env["CORDIAL_API_KEY"],
            rate_limits={"api": RateLimit(args.rate_limit_cordial, 60, per_route=True, headers=True)},
            secondary_keys=tuple(args.cordial_secondary_key),
            **common("cordial", ports["cordial"], soft_error_rate=args.cordial_soft_errors),
        ),
        TalonOneConfig(
            integration_key=env["TALON_ONE_INTEGRATION_KEY"],
            management_key=env["TALON_ONE_MANAGEMENT_KEY"],
            rate_limits={
                "integration": RateLimit(args.rate_limit_talon_one),
                "management": RateLimit(args.rate_limit_talon_one_management, per_route=True),
            },
            **common("talon_one", ports["talon_one"]),
        ),
    ]
    return configs, host


def client_settings(host: str, ports: Sequence[int], environ: Mapping[str, str]) -> str:
    """The variables that would point the clients at `host` and `ports`; empty when they already are."""
    if host == emulator_host(environ) and list(ports) == [emulator_port(n, environ) for n in EMULATOR_PORTS]:
        return ""
    if list(ports) == [ports[0] + i for i in range(len(ports))]:
        settings = [f"RELAY_EMULATOR_BASE_PORT={ports[0]}"]
    else:
        settings = [f"RELAY_EMULATOR_{n.upper()}_PORT={port}" for n, port in zip(EMULATOR_PORTS, ports)]
    return " ".join([f"RELAY_EMULATOR_HOST={host}", *settings])


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    configs, host = configs_from_namespace(args, os.environ, p)

    def listening() -> None:
        for config in configs:
            log.info("%s emulator on http://%s:%d", type(config).__name__.removesuffix("Config"), host, config.port)
        hint = client_settings(host, [c.port for c in configs], os.environ)
        if hint:
            log.warning("the clients (relay sync, relay run, make dev) call other addresses: give them %s", hint)

    try:
        run_servers([(create_app(config), config.port) for config in configs], host, listening=listening)
    except CannotListen as exc:
        log.error("%s. Choose others with --base-port N (or --host, --<name>-port); the clients find them through "
                  "RELAY_EMULATOR_HOST and RELAY_EMULATOR_BASE_PORT.", exc.strerror)
        return EXIT_CANNOT_LISTEN
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
