"""One sync as `python -m sinks.engine` runs it, with test-only extras applied first.

    python -m tests.support.sync_worker [--patch MODULE:NAME=JSON]... [--slow-s S] [--sabotage] -- ENGINE_ARGS

ENGINE_ARGS are `python -m sinks.engine`'s (SPEC WAREHOUSE [--failpoint after_ack:N] [--tuning JSON] ...).
--patch     set a module constant before the run (e.g. sinks.destinations.customerio:MAX_BATCH_BYTES=8192:
            smaller requests, so a small model still makes many); engine tuning goes through --tuning instead
--slow-s    an answer taking at least this long counts as slow
--sabotage  a deliberately broken engine (see sabotage_state_before_ack), to prove the crash checks catch one
After the engine's result line it prints {"observed": {...}}: the timeouts, dropped connections and slow
answers the client met (counted by wrapping httpx), the client's own view of the faults injected.

Run from the project root; it imports nothing else from tests/, so the child stays a plain engine process.
"""

import argparse
import collections
import importlib
import json
import sys
import time

import httpx

from sinks.engine.__main__ import main as engine_main


def apply_patch(assignment: str) -> None:
    """MODULE:NAME=JSON: set NAME in MODULE to the JSON value."""
    target, _, value = assignment.partition("=")
    module, _, name = target.partition(":")
    setattr(importlib.import_module(module), name, json.loads(value))


def count_client_faults(slow_s: float) -> collections.Counter:
    """Count, from now on, the timeouts, dropped connections and slow answers every httpx.AsyncClient meets."""
    seen = collections.Counter()
    request = httpx.AsyncClient.request

    async def observed(self, *args, **kwargs):
        started = time.monotonic()
        try:
            response = await request(self, *args, **kwargs)
        except httpx.TimeoutException:
            seen["client_timeouts"] += 1
            raise
        except (httpx.NetworkError, httpx.RemoteProtocolError):
            seen["connections_dropped"] += 1
            raise
        if time.monotonic() - started >= slow_s:
            seen["slow_answers"] += 1
        return response

    httpx.AsyncClient.request = observed
    return seen


def sabotage_state_before_ack() -> None:
    """A broken engine that records each batch in sync_state as it sends it, before any acknowledgement: what
    the crash checks must catch. It wraps BatchSender.send (sinks/engine/sender.py) to acknowledge the batch and
    write the state (the Delivery's writer) first."""
    from sinks.engine.delivery import Delivery
    from sinks.engine.sender import BatchSender

    make, send = Delivery.__init__, BatchSender.send

    def make_with_writer(self, *args, **kwargs):
        make(self, *args, **kwargs)
        self.sender.write_now = lambda: self.write(self.acks.take())

    async def record_then_send(self, client, batch):
        self.ack_batch(batch)
        self.write_now()
        await send(self, client, batch)

    Delivery.__init__, BatchSender.send = make_with_writer, record_then_send


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.support.sync_worker", description=__doc__.split("\n\n")[0])
    p.add_argument("--patch", action="append", default=[], metavar="MODULE:NAME=JSON")
    p.add_argument("--slow-s", type=float, default=float("inf"))
    p.add_argument("--sabotage", action="store_true")
    p.add_argument("engine_args", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    for assignment in args.patch:
        apply_patch(assignment)
    seen = count_client_faults(args.slow_s)
    if args.sabotage:
        sabotage_state_before_ack()
    engine_args = args.engine_args[1:] if args.engine_args[:1] == ["--"] else args.engine_args
    status = engine_main(engine_args)
    print(json.dumps({"observed": dict(seen)}), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
