"""`python -m sinks.emulators`: serve the three emulators until SIGINT/SIGTERM.

Ports, state directory, rate limits and faults come from arguments; credentials come from the
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

from sinks.destinations import EMULATOR_CREDENTIALS

from . import CordialConfig, CustomerIOConfig, EmulatorConfig, Faults, RateLimit, TalonOneConfig, serve_forever

log = logging.getLogger("sinks.emulators")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sinks.emulators", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--customerio-port", type=int, default=8701)
    p.add_argument("--cordial-port", type=int, default=8702)
    p.add_argument("--talon-one-port", type=int, default=8703)
    p.add_argument("--state-dir", type=Path, help="keep each emulator's state in <dir>/<name>.json across restarts")
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


def configs_from_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> tuple[list[EmulatorConfig], str]:
    """The three emulator configs (and the host) from command-line arguments and environment variables."""
    parser = _parser()
    args = parser.parse_args(argv)
    region = environ.get("CUSTOMERIO_REGION", "us").lower()
    if region not in ("us", "eu"):
        parser.error("CUSTOMERIO_REGION must be us or eu")
    defaulted = sorted(name for name in EMULATOR_CREDENTIALS if not environ.get(name))
    if defaulted:
        log.info("demo credentials in use for: %s", ", ".join(defaulted))
    env = {name: environ.get(name) or demo for name, demo in EMULATOR_CREDENTIALS.items()}
    faults = Faults(
        error_rate=args.fault_5xx,
        drop_rate=args.fault_drop,
        timeout_rate=args.fault_timeout,
        timeout_s=args.timeout_s,
        latency_ms=args.latency_ms,
        spike_rate=args.spike_rate,
        spike_ms=args.spike_ms,
        seed=args.seed,
    )

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
            **common("customerio", args.customerio_port),
        ),
        CordialConfig(
            api_key=env["CORDIAL_API_KEY"],
            rate_limits={"api": RateLimit(args.rate_limit_cordial, 60, per_route=True, headers=True)},
            secondary_keys=tuple(args.cordial_secondary_key),
            **common("cordial", args.cordial_port, soft_error_rate=args.cordial_soft_errors),
        ),
        TalonOneConfig(
            integration_key=env["TALON_ONE_INTEGRATION_KEY"],
            management_key=env["TALON_ONE_MANAGEMENT_KEY"],
            rate_limits={
                "integration": RateLimit(args.rate_limit_talon_one),
                "management": RateLimit(args.rate_limit_talon_one_management, per_route=True),
            },
            **common("talon_one", args.talon_one_port),
        ),
    ]
    return configs, args.host


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    configs, host = configs_from_args(argv, os.environ)
    for config in configs:
        log.info("%s emulator on http://%s:%d", type(config).__name__.removesuffix("Config"), host, config.port)
    serve_forever(configs, host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
