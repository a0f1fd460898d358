"""Run one sync in a process of its own and print its result as one line of JSON.

    python -m sinks.engine SPEC WAREHOUSE [--plan] [--full-resync] [--allow-large-change]
                           [--wait] [--failpoint after_ack:N|before_merges|merged] [--tuning JSON]

SPEC is a sync declaration as JSON (the fields of SyncSpec, as `dataclasses.asdict` gives them), or
@path to a file holding it; the destination is built from the environment like any run's. The output line
is RunResult.as_dict() plus `started` and `finished` (epoch seconds around execute()). Exit status 0 when
the run ended (whatever its status: a refused or failed run is a result), 1 when it raised.

--wait         build the run, print "ready", and start it when a line arrives on stdin (tests that time
               two processes against each other)
--failpoint    crash testing: after_ack:N exits the process (status 137) right after the Nth acknowledged
               batch, before its state write; before_merges once the survivors' writes are in the state,
               before any merge is sent; merged once the destination acknowledged a merge, before the
               survivor is re-asserted
--tuning       overrides of sinks.engine.Tuning, as a JSON object (e.g. {"flush_every_s": 0.02})
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from sinks import destinations
from sinks.declarations import EventOptions, SyncSpec
from sinks.engine import SyncRun, Tuning


def spec_from_json(text: str) -> SyncSpec:
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    fields = json.loads(text)
    return SyncSpec(**{**fields, "primary_key": tuple(fields["primary_key"]),
                       "events": EventOptions(**fields["events"]) if fields.get("events") else None,
                       "clock": tuple(fields["clock"]) if fields.get("clock") else None})


def crash_after_acks(n: int):
    """A hook for SyncRun(on_ack=...): the process dies right after the nth acknowledged batch."""
    count = 0

    def on_ack() -> None:
        nonlocal count
        count += 1
        if count == n:
            os._exit(137)

    return on_ack


def crash_at(step: str):
    """A hook for SyncRun(failpoint=...): the process dies when the run reaches `step`."""
    def failpoint(name: str) -> None:
        if name == step:
            os._exit(137)

    return failpoint


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sinks.engine", description=__doc__.split("\n\n")[0])
    p.add_argument("spec")
    p.add_argument("warehouse")
    p.add_argument("--plan", action="store_true", help="plan only: send nothing")
    p.add_argument("--full-resync", action="store_true")
    p.add_argument("--allow-large-change", action="store_true")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--failpoint", default="")
    p.add_argument("--tuning", default="{}")
    args = p.parse_args(argv)
    spec = spec_from_json(args.spec)
    on_ack = failpoint = None
    if args.failpoint in ("before_merges", "merged"):
        failpoint = crash_at(args.failpoint)
    elif args.failpoint:
        kind, _, n = args.failpoint.partition(":")
        if kind != "after_ack" or not n.isdigit():
            p.error(f"--failpoint {args.failpoint!r}: expected after_ack:N, before_merges or merged")
        on_ack = crash_after_acks(int(n))
    run = SyncRun(spec, destinations.build(spec.destination), args.warehouse, apply=not args.plan,
                  full_resync=args.full_resync, allow_large_change=args.allow_large_change,
                  tuning=Tuning(**json.loads(args.tuning)), on_ack=on_ack, failpoint=failpoint)
    if args.wait:
        print("ready", flush=True)
        sys.stdin.readline()
    started = time.time()
    result = run.execute()
    print(json.dumps({**result.as_dict(), "started": started, "finished": time.time()}, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
