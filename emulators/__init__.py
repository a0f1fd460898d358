"""Local emulators of the Customer.io, Cordial and Talon.One APIs.

Real HTTP servers on loopback that enforce what the vendors enforce (auth, shapes, limits, partial
errors, 409s, rate limits) and inject faults on demand, so the sync engine can be tested and benchmarked
offline. `base.py` and the modules beside it hold the machinery the three share; each vendor module
documents its contract choices. Run all three with `python -m emulators` (see `__main__.py`).

A room of its own: nothing here imports the clients (sinks/), and the clients import nothing from here;
what both must agree on (address, ports, demo credentials) is relay.config's.
"""

from collections.abc import Iterable

from starlette.applications import Starlette

from .base import EmulatorConfig
from .cordial import CordialConfig
from .cordial import create_app as create_cordial_app
from .customerio import CustomerIOConfig
from .customerio import create_app as create_customerio_app
from .faults import Faults
from .rate_limit import RateLimit
from .server import EmulatorServer, run_servers
from .talon_one import TalonOneConfig
from .talon_one import create_app as create_talon_one_app

__all__ = [
    "CordialConfig",
    "CustomerIOConfig",
    "EmulatorConfig",
    "EmulatorServer",
    "Faults",
    "RateLimit",
    "TalonOneConfig",
    "create_app",
    "serve_forever",
]

_FACTORIES = {
    CustomerIOConfig: create_customerio_app,
    CordialConfig: create_cordial_app,
    TalonOneConfig: create_talon_one_app,
}


def create_app(config: EmulatorConfig) -> Starlette:
    """The emulator app for a Customer.io, Cordial or Talon.One config."""
    return _FACTORIES[type(config)](config)


def serve_forever(configs: Iterable[EmulatorConfig], host: str = "127.0.0.1") -> None:
    """Serve every config's emulator on its `port` in this process until SIGINT/SIGTERM; state is saved on exit."""
    run_servers([(create_app(config), config.port) for config in configs], host)
