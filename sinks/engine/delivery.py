"""Delivery: plan on a thread while the client opens, set up the destination's objects, then send every
batch with bounded concurrency while a warehouse thread reads the next chunks and writes acknowledgements.

During delivery this run's connection is used by one thread only, the warehouse thread, one statement at a
time; the event loop only sends and settles."""

import asyncio
import collections
import concurrent.futures
import itertools
import logging
import time
from typing import Callable

import duckdb

from sinks.declarations import SyncSpec
from sinks.destinations.base import Bulk, Change, Destination, DestinationAuthError, ObjectRegistry, SetupError
from sinks.engine import state
from sinks.engine.chunks import ChangeReader
from sinks.engine.events import journal_in_flight, release_in_flight
from sinks.engine.sender import BatchSender
from sinks.engine.settings import Tuning
from sinks.http import REDACT, RetriesExhausted

log = logging.getLogger("relay.sync")
STOP_AFTER_FAILED_BATCHES = 3  # batches that exhausted their retries before the run stops sending


class Delivery:
    def __init__(self, con: duckdb.DuckDBPyConnection, spec: SyncSpec, destination: Destination, acks: state.Acks,
                 reader: ChangeReader, *, tuning: Tuning, concurrency: int, write: Callable[[state.Taken], None],
                 on_ack: Callable[[], None] | None = None) -> None:
        self.con, self.spec, self.destination, self.acks, self.reader = con, spec, destination, acks, reader
        self.tuning, self.concurrency = tuning, concurrency
        self.write = write  # writes what was taken from acks to the ledger
        self.sender = BatchSender(spec, destination, acks, lambda batch: self._in_db(reader.items, batch), on_ack)
        self._db: concurrent.futures.ThreadPoolExecutor | None = None  # the warehouse thread, during delivery
        self._flushing: asyncio.Future | None = None  # the state write in progress there
        self._last_flush = time.monotonic()
        self._journal_unsent: set[int] = set()  # steps journaled as in flight, not yet handed to the sender
        self._journal_write: asyncio.Future | None = None  # the latest journal write

    async def run(self, plan: Callable[[], None]) -> None:
        """Plan (on a thread, while the client is made), then deliver. An attribute sync's setup needs nothing
        from the plan, so it runs alongside (a first sync's attribute definitions are round trips, slow where an
        API allows a few requests a second). A run the blast-radius guard then refuses may have defined a new
        attribute at the destination, never a row."""
        cursor = self.con.cursor() if self.spec.object == "attributes" else None  # before the plan's thread runs
        planning = asyncio.get_running_loop().run_in_executor(None, plan)
        try:
            client = self.destination.open_client()
        except BaseException:
            await asyncio.gather(planning, return_exceptions=True)
            raise
        async with client:
            early = asyncio.create_task(self._setup(client, [], cursor)) if cursor is not None else None
            try:
                await planning
            except BaseException:
                if early is not None:
                    early.cancel()
                    await asyncio.gather(early, return_exceptions=True)
                raise
            await self._deliver(client, early)

    async def _deliver(self, client, setup: asyncio.Task | None) -> None:
        r = self.acks.result
        self.acks.total = r.planned - r.rejected
        self._db = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-warehouse")
        # The setting is the database's, which runs in other threads of this process share: a run lowers it
        # only from where it finds it and sets back what it found, so a race costs speed and leaves no change.
        threads = self.con.execute("select current_setting('threads')").fetchone()[0]
        lowered = self.tuning.delivery_threads < threads
        if lowered:
            self.con.execute(f"set threads = {int(self.tuning.delivery_threads)}")
        try:
            if setup is None and self.acks.total:  # a membership or events sync's: the names come from the plan
                setup = asyncio.create_task(self._setup(client, self.reader.audiences(), self.con.cursor()))
            bulk = self.destination.bulk(self.spec)
            chunks = self.reader.chunks(bulk)
            # Reading starts now, so the first chunks are ready when setup is done (reading needs nothing setup
            # makes). Read ahead several chunks: a state write queued on the thread then never leaves the
            # requests waiting for their next chunk.
            ahead = collections.deque(self._in_db(next, chunks, None) for _ in range(self.tuning.read_ahead_chunks))
            if setup is not None:
                await setup
            await self._send_all(client, bulk, chunks, ahead)
            r.requests, r.retries, r.throttled = client.stats.requests, client.stats.retries, client.stats.throttled
        finally:
            self._db.shutdown()  # waits: once the loop is done, nothing else may use the connection
            if lowered:
                self.con.execute(f"set threads = {int(threads)}")
        if self._flushing is not None:
            await self._flushing  # a state write that failed fails the run

    async def _setup(self, client, audiences: list[str], cursor: duckdb.DuckDBPyConnection) -> None:
        """On a connection of its own (`cursor`, which shares the database): the run's is busy elsewhere."""
        spec = self.spec
        try:
            await self.destination.setup(spec, client, ObjectRegistry(cursor, spec.destination, self.destination.account),
                                         audiences)
        except (SetupError, DestinationAuthError, RetriesExhausted):
            raise
        except Exception as exc:  # an answer the adapter cannot read: say so, send nothing
            raise SetupError(f"{spec.destination} answered setup in a way Relay does not understand "
                             f"({type(exc).__name__}: {REDACT.excerpt(exc, 200)}); nothing was sent") from exc
        finally:
            cursor.close()

    async def _send_all(self, client, bulk: Bulk | None, chunks, ahead: collections.deque) -> None:
        sem = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task] = set()
        failures = 0
        while failures < STOP_AFTER_FAILED_BATCHES and (chunk := await ahead.popleft()) is not None:
            ahead.append(self._in_db(next, chunks, None))
            for batch in self._journaled(self._batches(bulk, *chunk)):
                if isinstance(batch, asyncio.Future):  # the journal of the window of batches that follows
                    await batch
                    continue
                await sem.acquire()
                task = asyncio.create_task(self.sender.send(client, batch))
                task.add_done_callback(lambda _t: sem.release())
                tasks.add(task)
                done = {t for t in tasks if t.done()}
                tasks -= done
                failures += sum(self._settle(t) for t in done)
                self._flush_if_due()
                if failures >= STOP_AFTER_FAILED_BATCHES:
                    self.acks.result.message = "stopped early: the destination kept failing after retries"
                    break
        # Everything is sent. While the last request is answered, write what the others acknowledged, so what
        # is left to write after it is only its own rows (one write: each has a fixed cost).
        while tasks:
            done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                self._settle(t)
            self._flush_if_due(eager=len(tasks) == 1)
        if self._journal_unsent:  # the run stopped early: what was journaled and never sent cannot land
            await self._journal_write
            await self._in_db(release_in_flight, self.con, self.spec.name, sorted(self._journal_unsent))

    def _journaled(self, batches):
        """The batches, each window of them preceded by the write (a future to await) that journals its events
        as in flight, where the destination does not deduplicate events: a crash then leaves a record of what
        may have landed, which the next run holds instead of sending twice (sinks/engine/events.py)."""
        if not (self.spec.events and not self.destination.deduplicates_events):
            yield from batches
            return
        def journal(window):
            if not window:
                return None
            rns = [c.rn for b in window for c in b.items]
            self._journal_unsent.update(rns)
            self._journal_write = self._in_db(journal_in_flight, self.con, self.spec.name, self.acks.result.run_id, rns)
            return self._journal_write

        # The next window's journal is written while this one is sent, so sending never waits on the write.
        window = list(itertools.islice(batches, self.tuning.journal_window))
        written = journal(window)
        while window:
            yield written
            following = list(itertools.islice(batches, self.tuning.journal_window))
            written = journal(following)
            for batch in window:
                self._journal_unsent.difference_update(c.rn for c in batch.items)
                yield batch
            window = following

    def _batches(self, bulk: Bulk | None, changes: list[Change], bulk_rows: list[tuple]):
        """A chunk's batches, after acknowledging the changes that need no request."""
        for change in [c for c in changes if self.nothing_to_send(c)]:
            self.acks.ack(change)
        batches = self.destination.batches(self.spec, [c for c in changes if not self.nothing_to_send(c)])
        if bulk_rows:
            batches = itertools.chain(self.reader.bulk_batches(bulk, bulk_rows), batches)
        return batches

    def nothing_to_send(self, change: Change) -> bool:
        if change.kind == "remove" and not change.internal:
            return self.spec.on_exit == "ignore"  # the destination keeps the record; we only forget it
        return self.spec.object == "attributes" and change.kind == "change" and not change.fields

    def _settle(self, task: asyncio.Task) -> int:
        """1 when the batch's retries were exhausted (its rows stay unsent), else 0; other failures end the run."""
        exc = task.exception()
        if exc is None:
            return 0
        if isinstance(exc, DestinationAuthError):
            raise exc
        self.acks.clean = False
        if isinstance(exc, RetriesExhausted):
            log.warning("%s: %s", self.spec.name, REDACT(exc))
            self.acks.result.message = REDACT(exc)
            return 1
        raise exc

    def _in_db(self, fn, *args) -> asyncio.Future:
        return asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    def _flush_if_due(self, eager: bool = False) -> None:
        """Start a state write on the warehouse thread, one at a time. `eager`: whatever is waiting, however
        little."""
        if self._flushing is not None and not self._flushing.done():
            return
        waiting = self.acks.waiting
        if (eager and (waiting or self.acks.pending.rejections)) or waiting >= self.tuning.flush_every_rows \
                or time.monotonic() - self._last_flush >= self.tuning.flush_every_s:
            if self._flushing is not None:
                self._flushing.result()  # a state write that failed fails the run
            self._last_flush = time.monotonic()
            self._flushing = self._in_db(self.write, self.acks.take())
