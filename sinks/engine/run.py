"""One plan or apply of one sync: claim the sync, plan, deliver, and record how the run ended."""

import asyncio
import contextlib
import os
import threading
import time
import uuid
from typing import Callable

import duckdb

from relay import config
from sinks.declarations import SyncSpec
from sinks.destinations.base import Destination, DestinationAuthError
from sinks.engine import events, ledger, merges, state
from sinks.engine.changes import to_change
from sinks.engine.chunks import ChangeReader
from sinks.engine.delivery import Delivery
from sinks.engine.plan import Plan, check_blast_radius, check_model, make_plan, set_aside_unaddressable
from sinks.engine.result import RunResult, SyncRefused
from sinks.engine.settings import Guard, Tuning, resend_unconfirmed_s
from sinks.http import REDACT

_RUNNING: set[tuple[str, str]] = set()
_RUNNING_LOCK = threading.Lock()


@contextlib.contextmanager
def claim(warehouse: str | os.PathLike, name: str):
    """One run of a sync at a time in this process (no other process can open the warehouse for writing
    meanwhile), so only that run writes the sync's state and its keys stay unique (see state)."""
    key = (os.path.realpath(warehouse), name)
    with _RUNNING_LOCK:
        if key in _RUNNING:
            raise SyncRefused(f"sync {name} is already running in this process; runs of one sync never overlap")
        _RUNNING.add(key)
    try:
        yield
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(key)


class SyncRun:
    """One plan or apply of one sync. Use `execute()`; the warehouse connection is held only while it runs."""

    def __init__(
        self,
        spec: SyncSpec,
        destination: Destination,
        warehouse: str | os.PathLike,
        *,
        apply: bool = True,
        full_resync: bool = False,
        allow_large_change: bool = False,
        max_change_share: float | None = None,
        min_guarded_rows: int | None = None,
        concurrency: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        tuning: Tuning = Tuning(),
        on_ack: Callable[[], None] | None = None,
        failpoint: Callable[[str], None] | None = None,
        orchestrator_run_id: str | None = None,
    ) -> None:
        self.spec, self.destination, self.warehouse = spec, destination, warehouse
        self.apply, self.full_resync = apply, full_resync
        self.guard = Guard.from_environment(spec.max_change_share, max_change_share, min_guarded_rows,
                                            allow_large_change)
        self.concurrency = concurrency or destination.concurrency
        self.tuning = tuning
        self.on_ack = on_ack  # called after each acknowledged batch, before its state write (crash tests)
        self.failpoint = destination.failpoint = failpoint  # called with a step's name (crash tests)
        self.result = RunResult(
            run_id=f"{ledger.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
            sync_name=spec.name,
            destination=spec.destination,
            mode="apply" if apply else "plan",
            full_resync=full_resync,
            orchestrator_run_id=orchestrator_run_id,
        )
        self.acks = state.Acks(self.result, progress)
        self.plan: Plan | None = None

    def execute(self) -> RunResult:
        with claim(self.warehouse, self.spec.name):
            return self._execute()

    def _execute(self) -> RunResult:
        started = time.monotonic()
        self.con = ledger.connect(self.warehouse)
        try:
            ledger.insert_run(self.con, self.result)
            check_model(self.con, self.spec, self.result)
            if self.apply:
                if self.spec.events and not self.destination.deduplicates_events:
                    asyncio.run(events.settle_unknown(self.con, self.spec, self.destination, self.result, resend_unconfirmed_s()))
                asyncio.run(self._delivery().run(self._plan))
                if self.result.planned_merge:
                    self._deliver_merges()
                # The last acknowledgements, the run's outcome and its row commit together (one WAL sync).
                self._write(self.acks.take(), then=lambda: self._finish(started))
            else:
                self._plan()
                self.result.status = "planned"
                ledger.update_run(self.con, self.result, started)
        except SyncRefused as exc:
            self.result.status, self.result.message = "refused", str(exc)
            ledger.update_run(self.con, self.result, started)
        except DestinationAuthError as exc:
            self._failed(REDACT(exc), started)
        except duckdb.OutOfMemoryException as exc:  # the model's rows need more than the limit allows
            limit = config.number("RELAY_SYNC_MEMORY_MB")
            message = REDACT(f"{exc}. The sync's warehouse memory limit is RELAY_SYNC_MEMORY_MB "
                             f"({f'{limit} MB' if limit else 'unset: DuckDB default'}): raise it for rows this wide")
            self._failed(message, started)
            ledger.close(self.con, self.warehouse)
            raise MemoryError(message) from exc
        except Exception as exc:  # recorded, then re-raised: the run row must say how it ended
            self._failed(REDACT(f"{type(exc).__name__}: {exc}"), started)
            ledger.close(self.con, self.warehouse)
            raise
        ledger.close(self.con, self.warehouse)
        return self.result

    def _plan(self) -> None:
        if self.spec.events:
            self.plan = events.make_plan(self.con, self.spec, self.destination, self.result, apply=self.apply,
                                         full_resync=self.full_resync, samples_per_kind=self.tuning.samples_per_kind)
        else:
            self.plan = make_plan(self.con, self.spec, self.destination, self.result, full_resync=self.full_resync,
                                  samples_per_kind=self.tuning.samples_per_kind)
        if self.plan.unaddressable and self.apply:
            self.acks.set_aside(self.plan.unaddressable, f"identifier column {self.spec.identifier!r} is null; "
                                                         f"the row cannot be addressed at {self.spec.destination}")
            set_aside_unaddressable(self.con)
        check_blast_radius(self.guard, self.result, len(self.plan.resend), self.full_resync, self.plan.merges)

    def _deliver_merges(self) -> None:
        """Merges go last, and only into survivors whose writes are in the state: a destination ignores a merge
        into a record it does not hold yet (merges.py)."""
        self._write(self.acks.take())
        if self.failpoint:
            self.failpoint("before_merges")
        waiting = merges.ready(self.con, self.spec)
        if waiting:
            self.result.message = (f"{waiting} merges wait for their survivor's write, which was not acknowledged; "
                                   "their retired records exit now, and a later run merges them")
        asyncio.run(self._delivery(steps="rn in (select rn from _merges where outcome = 'merged')").run(lambda: None))

    def _delivery(self, steps: str = "kind <> 'merge'") -> Delivery:
        def step_to_change(step: tuple, rn: int):
            return to_change(self.spec, step, rn, resend=self.plan.resend, full_resync=self.full_resync)

        reader = ChangeReader(self.con, self.spec, self.destination, step_to_change, self.tuning.chunk_rows, steps)
        return Delivery(self.con, self.spec, self.destination, self.acks, reader, tuning=self.tuning,
                        concurrency=self.concurrency, write=self._write, on_ack=self.on_ack)

    def _write(self, taken: state.Taken, then: Callable[[], None] | None = None) -> None:
        state.write(self.con, taken, sync=self.spec.name, run_id=self.result.run_id,
                    resend_after_s=resend_unconfirmed_s(), then=then, events=self.spec.events is not None,
                    merges=self.spec.merges is not None and self.plan is not None)

    def _failed(self, message: str, started: float) -> None:
        """A run that could not finish: what was acknowledged is kept, the rest counts as unsent."""
        self._write(self.acks.take())
        r = self.result
        r.status, r.message = "failed", message
        r.unsent = r.unacknowledged if self.apply else 0
        ledger.update_run(self.con, r, started)

    def _finish(self, started: float) -> None:
        self.result.conclude(resend_unconfirmed_s(), events=self.spec.events is not None)
        if self.acks.clean and self.result.status == "succeeded":  # every re-assertion landed
            self.con.execute("delete from relay.sync_unconfirmed where sync_name = ? and resend_after <= ?",
                             [self.spec.name, self.plan.planned_at])
        ledger.update_run(self.con, self.result, started)
