"""Paths and environment shared by the CLI, dbt, Dagster, the sync engine and the emulators.

The ground floor: it imports nothing from the project, so sinks/ and emulators/ may both read it.

Everything that touches the warehouse resolves it here, once, to an absolute path exported as
RELAY_WAREHOUSE: dbt's profiles.yml reads that variable, so a relative path can never silently
create a second, empty warehouse next to whatever the current directory happens to be.

Where the emulators listen is one setting, read here by the clients (sinks.destinations) and by the
emulator server's defaults (`python -m emulators`, `relay emulators`): RELAY_EMULATOR_HOST (default
127.0.0.1) and RELAY_EMULATOR_BASE_PORT (default 8701: Customer.io on it, Cordial on +1, Talon.One on +2),
each port also settable alone (RELAY_EMULATOR_CUSTOMERIO_PORT, RELAY_EMULATOR_CORDIAL_PORT,
RELAY_EMULATOR_TALON_ONE_PORT).
"""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The shipped dbt project, unless RELAY_DBT_PROJECT_DIR names another copy of it (a fork, or a test's patched one).
DBT_PROJECT_DIR = Path(os.environ.get("RELAY_DBT_PROJECT_DIR") or PROJECT_ROOT / "dbt_project").resolve()


def data_dir() -> Path:
    return Path(os.environ.get("RELAY_DATA_DIR") or PROJECT_ROOT / "data").resolve()


def warehouse_path() -> Path:
    return Path(os.environ.get("RELAY_WAREHOUSE", data_dir() / "warehouse.duckdb")).resolve()


def dbt_target_dir() -> Path:
    """The data directory's dbt artifacts and saved parse (orchestration/dbt_runs.py)."""
    return data_dir() / "dbt"


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME", PROJECT_ROOT / ".dagster")).resolve()


def export_environment() -> None:
    """Make every child process (dbt, dagster) see the same absolute paths."""
    wh = warehouse_path()
    wh.parent.mkdir(parents=True, exist_ok=True)
    os.environ["RELAY_WAREHOUSE"] = str(wh)
    os.environ.setdefault("DBT_PROFILES_DIR", str(DBT_PROJECT_DIR))
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    # DAGSTER_HOME must contain dagster.yaml; the project's single copy lives at the top level.
    link = home / "dagster.yaml"
    if not link.exists():
        link.symlink_to(PROJECT_ROOT / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)


class ConfigError(ValueError):
    """A missing or malformed setting; `problems` lists every one found (relay doctor shows them all)."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


_ABOVE_ZERO = (lambda v: v > 0, "a number above 0")
_NOT_NEGATIVE = (lambda v: v >= 0, "a number, 0 or more")
_SHARE = (lambda v: 0 < v <= 1, "a share above 0 and at most 1, e.g. 0.3")
_FRACTION = (lambda v: 0 <= v <= 1, "a share from 0 to 1, e.g. 0.02")
_COUNT = (lambda v: v >= 0, "a whole number, 0 or more")
_POSITIVE_COUNT = (lambda v: v >= 1, "a whole number, 1 or more")

# Every numeric setting: its type, its default and what it must be. number() reads one; relay doctor checks all.
NUMBERS = {
    "RELAY_CONCURRENCY": (int, 8, _POSITIVE_COUNT),
    "RELAY_MAX_CHANGE_SHARE": (float, 0.3, _SHARE),
    "RELAY_BLAST_RADIUS_MIN_ROWS": (int, 100, _COUNT),
    "RELAY_MAX_MERGE_SHARE": (float, 0.02, _FRACTION),
    "RELAY_MAX_REJECTED_SHARE": (float, 0.01, _FRACTION),
    "RELAY_RESEND_UNCONFIRMED_S": (float, 300.0, _NOT_NEGATIVE),
    "RELAY_DEMO_CUSTOMERS": (int, 5000, _POSITIVE_COUNT),
    "RELAY_SYNC_MEMORY_MB": (int, 400, (lambda v: v == 0 or v >= 128, "megabytes, 128 or more, or 0 (DuckDB's default)")),
    "CUSTOMERIO_RATE_LIMIT": (float, 100.0, _ABOVE_ZERO),
    "CORDIAL_RATE_LIMIT_PER_MIN": (float, 6000.0, _ABOVE_ZERO),
    "CORDIAL_IMPORT_MIN_ROWS": (int, 1000, _POSITIVE_COUNT),
    "TALON_ONE_RATE_LIMIT": (float, 300.0, _ABOVE_ZERO),
    "TALON_ONE_MANAGEMENT_RATE_LIMIT": (float, 3.0, _ABOVE_ZERO),
}


def number(variable: str, environ=os.environ) -> int | float:
    """The numeric setting `variable` (one of NUMBERS), or its default when unset; a malformed one is a
    ConfigError naming it and what it must be."""
    kind, default, (valid, expected) = NUMBERS[variable]
    text = environ.get(variable)
    if not text:
        return default
    try:
        value = kind(text.strip())
    except ValueError:
        raise ConfigError(f"{variable} is {text!r}; expected {expected}") from None
    if not valid(value):  # also refuses nan
        raise ConfigError(f"{variable} is {text!r}; expected {expected}")
    return value


def live() -> bool:
    """RELAY_DESTINATIONS: `emulator` (the default: the local emulators) or `live` (the vendors' hosts)."""
    mode = os.environ.get("RELAY_DESTINATIONS", "emulator")
    if mode not in ("emulator", "live"):
        raise ConfigError(f"RELAY_DESTINATIONS is {mode!r}; expected 'emulator' or 'live'")
    return mode == "live"


# The emulators' default ports; RELAY_EMULATOR_BASE_PORT and RELAY_EMULATOR_<NAME>_PORT move them (emulator_port).
EMULATOR_PORTS = {"customerio": 8701, "cordial": 8702, "talon_one": 8703}
# The emulators accept these when no credentials are configured, and the clients send them: they are not secrets.
EMULATOR_CREDENTIALS = {
    "CUSTOMERIO_SITE_ID": "demo-site",
    "CUSTOMERIO_TRACK_API_KEY": "demo-track-key",
    "CUSTOMERIO_APP_API_KEY": "demo-app-key",
    "CORDIAL_API_KEY": "demo-cordial-key",
    "TALON_ONE_INTEGRATION_KEY": "demo-talon-integration-key",
    "TALON_ONE_MANAGEMENT_KEY": "demo-talon-management-key",
}


def customerio_region(environ=os.environ) -> str:
    """The Customer.io account's region (CUSTOMERIO_REGION): the client's hosts, and the emulator's account."""
    region = environ.get("CUSTOMERIO_REGION", "us").lower()
    if region not in ("us", "eu"):
        raise ConfigError(f"CUSTOMERIO_REGION is {region!r}; expected 'us' or 'eu'")
    return region


def emulator_host(environ=os.environ) -> str:
    """Where the emulators listen and the clients call them (RELAY_EMULATOR_HOST)."""
    return environ.get("RELAY_EMULATOR_HOST") or "127.0.0.1"


def _port(environ, variable: str, default: int) -> int:
    value = environ.get(variable)
    if not value:
        return default
    try:
        port = int(value)
    except ValueError:
        raise ConfigError(f"{variable} is {value!r}; expected a port number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{variable} is {port}; expected a port number from 1 to 65535")
    return port


def emulator_port(name: str, environ=os.environ) -> int:
    """The emulator port of destination `name`: RELAY_EMULATOR_<NAME>_PORT, else RELAY_EMULATOR_BASE_PORT plus
    the destination's offset (customerio 0, cordial 1, talon_one 2), else 8701-8703."""
    offset = list(EMULATOR_PORTS).index(name)
    base = _port(environ, "RELAY_EMULATOR_BASE_PORT", EMULATOR_PORTS["customerio"])
    if base + 2 > 65535:
        raise ConfigError(f"RELAY_EMULATOR_BASE_PORT is {base}; the three emulators need it and the next two ports")
    return _port(environ, f"RELAY_EMULATOR_{name.upper()}_PORT", base + offset)


def emulator_url(name: str, environ=os.environ) -> str:
    return http_url(emulator_host(environ), emulator_port(name, environ))


def http_url(host: str, port: int) -> str:
    """http://host:port, with an IPv6 address in brackets."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"
