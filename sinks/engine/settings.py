"""How a run is tuned and guarded: the defaults, and the environment variables that change them."""

from dataclasses import dataclass

from relay import config


@dataclass(frozen=True)
class Tuning:
    """How delivery trades memory, write frequency and warehouse threads (tests shrink these)."""

    chunk_rows: int = 5000  # steps read from _changes at a time
    # Acknowledged rows reach the state at least this often. Each flush is a transaction (and a WAL sync);
    # after a crash, at most this much acknowledged work is sent again (idempotent at every destination).
    # Small flushes keep what is left to write after the last answer small.
    flush_every_s: float = 2.0
    flush_every_rows: int = 5000
    # Chunks read ahead on the warehouse thread, so a state write queued there does not hold up sending.
    read_ahead_chunks: int = 3
    # DuckDB threads while requests are in flight. The warehouse thread's statements then are small (a chunk,
    # a flush), and its worker threads would only compete for the cores the event loop needs (and, against a
    # local emulator, the destination): one thread does that work in less CPU time, and sooner.
    delivery_threads: int = 1
    samples_per_kind: int = 3  # example changes of each kind the plan shows
    # Events to a destination that does not deduplicate them are journaled as in flight this many batches at a
    # time, before they are sent (one warehouse write each, the next window's while this one is sent): a crash
    # leaves the requests in flight and at most two such windows of events of unknown fate, held, not resent.
    journal_window: int = 16


@dataclass(frozen=True)
class Guard:
    """The blast-radius guard: a run that would change or remove more than `max_change_share` of what the
    destination holds, or merge more than `max_merge_share` of it (and at least `min_rows` rows) is refused
    unless approved."""

    max_change_share: float
    min_rows: int
    allow_large_change: bool = False
    max_merge_share: float = 0.02

    @classmethod
    def from_environment(cls, declared_share: float | None = None, max_change_share: float | None = None,
                         min_rows: int | None = None, allow_large_change: bool = False) -> "Guard":
        """The sync's declared share wins over the caller's, which wins over RELAY_MAX_CHANGE_SHARE."""
        share = declared_share or max_change_share or config.number("RELAY_MAX_CHANGE_SHARE")
        rows = min_rows if min_rows is not None else config.number("RELAY_BLAST_RADIUS_MIN_ROWS")
        return cls(share, rows, allow_large_change, config.number("RELAY_MAX_MERGE_SHARE"))


def resend_unconfirmed_s() -> float:
    """How long a write of unknown fate may still land: longer than a destination's servers hold a request
    (the emulators stall for less)."""
    return config.number("RELAY_RESEND_UNCONFIRMED_S")
