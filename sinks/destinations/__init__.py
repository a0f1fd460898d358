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


class _Settings:
    """One destination's settings as they are read, with every problem collected rather than the first
    raised: a person fixing a configuration sees it all at once (relay doctor, the first step of a job)."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def secret(self, var: str, required: bool = True) -> str | None:
        value = (os.environ.get(var) or "").strip()  # a key pasted with its line break is still the key
        if value:
            return value
        if not config.live():
            return config.EMULATOR_CREDENTIALS.get(var)
        if required:
            self.problems.append(f"{var} is not set (required with RELAY_DESTINATIONS=live)")
        return None

    def number(self, var: str) -> int | float:
        try:
            return config.number(var)
        except ConfigError as exc:
            self.problems += exc.problems
            return config.NUMBERS[var][1]

    def url(self, var: str, default: str | None) -> str | None:
        value = os.environ.get(var) or default
        if value and not value.startswith(("https://", "http://")):
            self.problems.append(f"{var} is {value!r}; expected a URL starting with https://")
        return value

    def check(self) -> None:
        if self.problems:
            raise ConfigError(*self.problems)


# Adapter classes by destination, imported on first use.
ADAPTERS = {"customerio": "sinks.destinations.customerio:CustomerIO", "cordial": "sinks.destinations.cordial:Cordial",
            "talon_one": "sinks.destinations.talon_one:TalonOne"}


def declaration_problems(spec) -> list[str]:
    """What the sync's destination cannot express as declared."""
    module, name = ADAPTERS[spec.destination].split(":")
    return getattr(importlib.import_module(module), name).declaration_problems(spec)


def build(name: str) -> Destination:
    """Destination `name`'s adapter, configured from the environment; a ConfigError lists every missing or
    malformed setting it needs."""
    if name not in ADAPTERS:
        raise ConfigError(f"unknown destination {name!r}; expected one of {', '.join(ADAPTERS)}")
    settings = _Settings()
    options = {"customerio": _customerio, "cordial": _cordial, "talon_one": _talon_one}[name](settings)
    options["concurrency"] = settings.number("RELAY_CONCURRENCY")
    settings.check()
    module, cls = ADAPTERS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)


def _customerio(settings: _Settings) -> dict:
    region = config.customerio_region()
    suffix = "-eu" if region == "eu" else ""
    emulator = None if config.live() else config.emulator_url("customerio")
    return dict(
        track_url=settings.url("CUSTOMERIO_TRACK_URL", emulator or f"https://track{suffix}.customer.io"),
        app_url=settings.url("CUSTOMERIO_APP_URL", emulator or f"https://api{suffix}.customer.io"),
        site_id=settings.secret("CUSTOMERIO_SITE_ID"),
        track_api_key=settings.secret("CUSTOMERIO_TRACK_API_KEY"),
        app_api_key=settings.secret("CUSTOMERIO_APP_API_KEY", required=False),
        rate_per_s=settings.number("CUSTOMERIO_RATE_LIMIT"),
        region=region,
    )


def _cordial(settings: _Settings) -> dict:
    # Bulk imports: a directory Cordial can read files from, at a URL. The emulators share this machine, so
    # they read the data dir directly; live, imports are on only when both are set.
    import_dir = os.environ.get("CORDIAL_IMPORT_DIR")
    import_url = os.environ.get("CORDIAL_IMPORT_URL")
    if not config.live() and not import_dir:
        import_dir = str(config.data_dir() / "cordial_imports")
        import_url = Path(import_dir).as_uri()
    return dict(
        base_url=settings.url("CORDIAL_API_URL", "https://api.cordial.io" if config.live() else config.emulator_url("cordial")),
        api_key=settings.secret("CORDIAL_API_KEY"),
        rate_per_min=settings.number("CORDIAL_RATE_LIMIT_PER_MIN"),
        import_dir=import_dir,
        import_url=import_url,
        import_min_rows=settings.number("CORDIAL_IMPORT_MIN_ROWS"),
    )


def _talon_one(settings: _Settings) -> dict:
    base = settings.url("TALON_ONE_BASE_URL", None if config.live() else config.emulator_url("talon_one"))
    if not base:
        settings.problems.append("TALON_ONE_BASE_URL is not set (your deployment's URL, e.g. "
                                 "https://yourbrand.europe-west1.talon.one)")
    # The Application the integration key belongs to: lets a run check which events of unknown fate landed.
    application = os.environ.get("TALON_ONE_APPLICATION_ID") or ("0" if config.live() else "1")
    if not application.strip().isdigit():
        settings.problems.append(f"TALON_ONE_APPLICATION_ID is {application!r}; expected the Application's id, a whole number")
        application = "0"
    return dict(
        base_url=base,
        integration_key=settings.secret("TALON_ONE_INTEGRATION_KEY"),
        management_key=settings.secret("TALON_ONE_MANAGEMENT_KEY", required=False),
        rate_per_s=settings.number("TALON_ONE_RATE_LIMIT"),
        management_rate_per_s=settings.number("TALON_ONE_MANAGEMENT_RATE_LIMIT"),
        application_id=int(application) or None,
    )
