"""Build destination adapters from the environment.

RELAY_DESTINATIONS=emulator (default) points every destination at the local emulators with their demo
credentials unless real ones are given; RELAY_DESTINATIONS=live points them at the vendors' hosts and
requires credentials. Any *_URL variable overrides the host in either mode. Where the emulators listen,
and their demo credentials, are relay.config's (the emulators read the same settings there).
Secrets are read here, at run time, and only handed to HTTP headers."""

import importlib
import os
from pathlib import Path

from relay import config
from relay.config import ConfigError
from sinks.destinations.base import Destination


# The environment variable that points each destination elsewhere than its emulator.
URL_OVERRIDES = {"customerio": ("CUSTOMERIO_TRACK_URL", "CUSTOMERIO_APP_URL"), "cordial": ("CORDIAL_API_URL",),
                 "talon_one": ("TALON_ONE_BASE_URL",)}


def uses_emulator(name: str) -> bool:
    """Whether destination `name` calls its emulator at config.emulator_url(): emulator mode, and a *_URL
    variable does not point it (or, for Customer.io, both of its APIs) elsewhere."""
    return not config.live() and not all(os.environ.get(v) for v in URL_OVERRIDES[name])


def emulator_credential_checks(name: str) -> dict[str, tuple[str, str]]:
    """Per auth group of destination `name`: the variable(s) its credential comes from and the Authorization
    header the adapter sends, for GET /_emulator/auth/<group> (does a running emulator accept them?)."""
    adapter = build(name)
    return {group: (adapter.CREDENTIAL_VARIABLES[group], header) for group, header in adapter.auth_headers().items()}


def _secret(var: str, required: bool = True) -> str | None:
    value = os.environ.get(var)
    if value:
        return value
    if not config.live():
        return config.EMULATOR_CREDENTIALS.get(var)
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

        suffix = "-eu" if config.customerio_region() == "eu" else ""
        default_track = f"https://track{suffix}.customer.io" if config.live() else config.emulator_url(name)
        default_app = f"https://api{suffix}.customer.io" if config.live() else config.emulator_url(name)
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
        if not config.live() and not import_dir:
            import_dir = str(config.data_dir() / "cordial_imports")
            import_url = Path(import_dir).as_uri()
        return Cordial(
            base_url=os.environ.get("CORDIAL_API_URL", "https://api.cordial.io" if config.live() else config.emulator_url(name)),
            api_key=_secret("CORDIAL_API_KEY"),
            rate_per_min=float(os.environ.get("CORDIAL_RATE_LIMIT_PER_MIN", "6000")),
            concurrency=concurrency,
            import_dir=import_dir,
            import_url=import_url,
            import_min_rows=int(os.environ.get("CORDIAL_IMPORT_MIN_ROWS", "1000")),
        )
    if name == "talon_one":
        from sinks.destinations.talon_one import TalonOne

        base = os.environ.get("TALON_ONE_BASE_URL") or (None if config.live() else config.emulator_url(name))
        if not base:
            raise ConfigError("TALON_ONE_BASE_URL is not set (your deployment's URL, e.g. https://yourbrand.europe-west1.talon.one)")
        return TalonOne(
            base_url=base,
            integration_key=_secret("TALON_ONE_INTEGRATION_KEY"),
            management_key=_secret("TALON_ONE_MANAGEMENT_KEY", required=False),
            rate_per_s=float(os.environ.get("TALON_ONE_RATE_LIMIT", "300")),
            management_rate_per_s=float(os.environ.get("TALON_ONE_MANAGEMENT_RATE_LIMIT", "3")),
            concurrency=concurrency,
            # The Application the integration key belongs to: lets a run check which events of unknown fate landed.
            application_id=int(os.environ.get("TALON_ONE_APPLICATION_ID") or (0 if config.live() else 1)) or None,
        )
    raise ConfigError(f"unknown destination {name!r}")
