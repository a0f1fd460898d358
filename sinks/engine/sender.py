"""One batch to its destination and back: send it, read the answer, and settle every row it carried as
acknowledged, refused, or (when the answer is unreadable or never came) unsent. A batch the destination
refused as a whole is split to isolate the rows it blames."""

from typing import Awaitable, Callable

from sinks.declarations import SyncSpec
from sinks.destinations.base import Batch, Change, Destination, DestinationAuthError, SplitBatch
from sinks.engine.state import Acks
from sinks.http import REDACT, FateUnknown, RetriesExhausted, excerpt, watch_ambiguity


class BatchSender:
    def __init__(self, spec: SyncSpec, destination: Destination, acks: Acks,
                 load_items: Callable[[Batch], Awaitable[list[Change]]],
                 on_ack: Callable[[], None] | None = None) -> None:
        self.spec, self.destination, self.acks = spec, destination, acks
        self.load_items = load_items  # a bulk batch's changes, read from the plan when an answer needs them
        self.on_ack = on_ack  # after each acknowledged batch, before its state write (crash tests)

    async def send(self, client, batch: Batch) -> None:
        with watch_ambiguity() as ambiguous:
            try:
                await self._send(client, batch)
            except FateUnknown:
                # An event the destination would keep twice was not retried: it stays journaled as in flight,
                # and the next run looks it up or holds it (sinks/engine/events.py).
                self.acks.unconfirmed([c.rn for c in batch.items])
            finally:
                # Acknowledged or not, a copy of this write may still land: re-asserted later. Events are
                # not re-asserted: a destination that deduplicates them drops the copy.
                if ambiguous and not self.spec.events:
                    self.acks.unconfirmed(batch.bulk or [c.rn for c in batch.items])

    async def _send(self, client, batch: Batch) -> None:
        if batch.job is not None:  # the destination's own protocol (e.g. a bulk import it polls)
            outcomes = await batch.job(client, lambda: self.load_items(batch))
            if outcomes is None:
                self.ack_batch(batch)
            self._settle(outcomes or [], None)
            if outcomes is None or any(e is None for _, e in outcomes):
                self._acknowledged()
            return
        if batch.request is None:  # the adapter could not build a request for these rows
            self.acks.reject(batch.items, None, batch.error)
            return
        response = await client.send(batch.request)
        if response.status_code in (401, 403):
            raise DestinationAuthError(
                f"{self.spec.destination} refused the credentials (HTTP {response.status_code}) for "
                f"{batch.request.label}; check {self.destination.credential_hint}"
            )
        if batch.bulk:
            if self.destination.acknowledged(self.spec, response):
                self.ack_batch(batch)
                self._acknowledged()
                return
            await self.load_items(batch)  # some entries failed: with their values, as a split resends them
        try:
            outcomes = self.destination.interpret(self.spec, batch, response)
        except SplitBatch as split:
            await self._split(client, batch, response, split)
            return
        except Exception as exc:
            # An answer the adapter cannot read (a body of an undocumented shape): nothing is known to be
            # applied, so the rows stay unsent and the failure counts like exhausted retries.
            raise RetriesExhausted(
                f"{batch.request.label}: HTTP {response.status_code} with an answer "
                f"{self.spec.destination} does not document ({type(exc).__name__}): {excerpt(response)}") from exc
        self._settle(outcomes, response.status_code)
        if any(e is None for _, e in outcomes):
            self._acknowledged()

    async def _split(self, client, batch: Batch, response, split: SplitBatch) -> None:
        if split.rejected:
            # The answer names the bad rows: record them; the rest were not applied, so resend them.
            for i, reason in split.rejected.items():
                self.acks.reject([batch.items[i]], response.status_code, reason)
            parts = [[c for i, c in enumerate(batch.items) if i not in split.rejected]]
        elif len(batch.items) == 1:
            reason = f"HTTP {response.status_code}: {REDACT.excerpt(response.text, 300)}"
            self.acks.reject(batch.items, response.status_code, reason)
            return
        else:
            # Bisect a batch the destination refused as a whole, to isolate the bad rows.
            half = len(batch.items) // 2
            parts = [batch.items[:half], batch.items[half:]]
        for part in parts:
            for sub in self.destination.batches(self.spec, part):
                await self.send(client, sub)

    def _settle(self, outcomes: list[tuple[Change, str | None]], status: int | None) -> None:
        for change, error in outcomes:
            if error is None:
                self.acks.ack(change)
            else:
                self.acks.reject([change], status, error)

    def ack_batch(self, batch: Batch) -> None:
        if batch.bulk:
            self.acks.ack_bulk(batch.bulk)
        else:
            for change in batch.items:
                self.acks.ack(change)

    def _acknowledged(self) -> None:
        if self.on_ack:
            self.on_ack()
