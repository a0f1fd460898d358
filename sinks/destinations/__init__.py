"""Build destination adapters from the environment.

RELAY_DESTINATIONS=emulator (default) points every destination at the local emulators on loopback
with their demo credentials unless real ones are given; RELAY_DESTINATIONS=live points them at the
vendors' hosts and requires credentials. Any *_URL variable overrides the host in either mode.
Secrets are read here, at run time, and only handed to HTTP headers."""

import importlib
import os
from pathlib import Path

from sinks.destinations.base import Destination

EMULATOR_PORTS = {"customerio": 8701, "cordial": 8702, "talon_one": 8703}
# The emulators accept these when no credentials are configured: they are not secrets.
EMULATOR_CREDENTIALS = {
    "CUSTOMERIO_SITE_ID": "demo-site",
    "CUSTOMERIO_TRACK_API_KEY": "demo-track-key",
    "CUSTOMERIO_APP_API_KEY": "demo-app-key",
    "CORDIAL_API_KEY": "demo-cordial-key",
    "TALON_ONE_INTEGRATION_KEY": "demo-talon-integration-key",
    "TALON_ONE_MANAGEMENT_KEY": "demo-talon-management-key",
}


class ConfigError(ValueError):
    pass


def live() -> bool:
    mode = os.environ.get("RELAY_DESTINATIONS", "emulator")
    if mode not in ("emulator", "live"):
        raise ConfigError(f"RELAY_DESTINATIONS is {mode!r}; expected 'emulator' or 'live'")
    return mode == "live"


def emulator_url(name: str) -> str:
    host = os.environ.get("RELAY_EMULATOR_HOST", "127.0.0.1")
    return f"http://{host}:{EMULATOR_PORTS[name]}"


def _secret(var: str, required: bool = True) -> str | None:
    value = os.environ.get(var)
    if value:
        return value
    if not live():
        return EMULATOR_CREDENTIALS.get(var)
    if required:
        raise ConfigError(f"{var} is not set (required with RELAY_DESTINATIONS=live)")
    return None


# Adapter classes by destination, imported on first use.
ADAPTERS = {"customerio": "sinks.destinations.customerio:CustomerIO", "cordial": "sinks.destinations.cordial:Cordial",
            "talon_one": "sinks.destinations.talon_one:TalonOne"}


def declaration_problems(spec) -> list[str]:
    """What the sync's destination cannot express as declared."""
    module, name = ADAPTERS[spec.destination].split(":")
    return getattr(importlib.import_module(module), name).declaration_problems(spec)


def build(name: str) -> Destination:
    concurrency = int(os.environ.get("RELAY_CONCURRENCY", "8"))
    if name == "customerio":
        from sinks.destinations.customerio import CustomerIO

        region = os.environ.get("CUSTOMERIO_REGION", "us").lower()
        if region not in ("us", "eu"):
            raise ConfigError(f"CUSTOMERIO_REGION is {region!r}; expected 'us' or 'eu'")
        suffix = "-eu" if region == "eu" else ""
        default_track = f"https://track{suffix}.customer.io" if live() else emulator_url(name)
        default_app = f"https://api{suffix}.customer.io" if live() else emulator_url(name)
        return CustomerIO(
            track_url=os.environ.get("CUSTOMERIO_TRACK_URL", default_track),
            app_url=os.environ.get("CUSTOMERIO_APP_URL", default_app),
            site_id=_secret("CUSTOMERIO_SITE_ID"),
            track_api_key=_secret("CUSTOMERIO_TRACK_API_KEY"),
            app_api_key=_secret("CUSTOMERIO_APP_API_KEY", required=False),
            rate_per_s=float(os.environ.get("CUSTOMERIO_RATE_LIMIT", "100")),
            concurrency=concurrency,
        )
    if name == "cordial":
        from sinks.destinations.cordial import Cordial

        # Bulk imports: a directory Cordial can read files from, at a URL. The emulators share this
        # machine, so they read the data dir directly; live, imports are on only when both are set.
        import_dir = os.environ.get("CORDIAL_IMPORT_DIR")
        import_url = os.environ.get("CORDIAL_IMPORT_URL")
        if not live() and not import_dir:
            import_dir = os.path.join(os.path.abspath(os.environ.get("RELAY_DATA_DIR", "data")), "cordial_imports")
            import_url = Path(import_dir).as_uri()
        return Cordial(
            base_url=os.environ.get("CORDIAL_API_URL", "https://api.cordial.io" if live() else emulator_url(name)),
            api_key=_secret("CORDIAL_API_KEY"),
            rate_per_min=float(os.environ.get("CORDIAL_RATE_LIMIT_PER_MIN", "6000")),
            concurrency=concurrency,
            import_dir=import_dir,
            import_url=import_url,
            import_min_rows=int(os.environ.get("CORDIAL_IMPORT_MIN_ROWS", "1000")),
        )
    if name == "talon_one":
        from sinks.destinations.talon_one import TalonOne

        base = os.environ.get("TALON_ONE_BASE_URL") or (None if live() else emulator_url(name))
        if not base:
            raise ConfigError("TALON_ONE_BASE_URL is not set (your deployment's URL, e.g. https://yourbrand.europe-west1.talon.one)")
        return TalonOne(
            base_url=base,
            integration_key=_secret("TALON_ONE_INTEGRATION_KEY"),
            management_key=_secret("TALON_ONE_MANAGEMENT_KEY", required=False),
            rate_per_s=float(os.environ.get("TALON_ONE_RATE_LIMIT", "300")),
            management_rate_per_s=float(os.environ.get("TALON_ONE_MANAGEMENT_RATE_LIMIT", "3")),
            concurrency=concurrency,
        )
    raise ConfigError(f"unknown destination {name!r}")
