"""What one run reports (a row of relay.sync_runs), and how a run is refused before sending anything."""

from dataclasses import asdict, dataclass, field


class SyncRefused(Exception):
    """The plan is abnormal (blast radius) or the model is unusable (duplicate keys); nothing was sent."""


@dataclass
class RunResult:
    run_id: str
    sync_name: str
    destination: str
    mode: str
    status: str = "running"
    full_resync: bool = False
    orchestrator_run_id: str | None = None  # the run of the orchestrator (Dagster) that started this one
    model_rows: int = 0
    state_rows: int = 0
    planned_add: int = 0
    planned_change: int = 0
    planned_remove: int = 0
    planned_merge: int = 0  # retired records merged into their survivor at the destination (sinks/engine/merges.py)
    acked_add: int = 0
    acked_change: int = 0
    acked_remove: int = 0
    acked_merge: int = 0
    rejected: int = 0
    unsent: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    resent: int = 0  # rows re-asserted because a write of unknown fate may have undone them
    unconfirmed: int = 0  # rows this run wrote with a request of unknown fate: re-asserted later
    skipped: int = 0  # events this run recorded as never to be sent (relay.sync_skipped)
    duration_s: float = 0.0
    rows_per_s: float = 0.0
    message: str = ""
    plan: dict = field(default_factory=dict)

    @property
    def planned(self) -> int:
        return self.planned_add + self.planned_change + self.planned_remove + self.planned_merge

    @property
    def acked(self) -> int:
        return self.acked_add + self.acked_change + self.acked_remove + self.acked_merge

    @property
    def unacknowledged(self) -> int:
        """Planned rows neither acknowledged nor refused: resent next run."""
        return max(0, self.planned - self.acked - self.rejected)

    def as_dict(self) -> dict:
        return asdict(self)

    def conclude(self, resend_after_s: float, events: bool = False) -> None:
        """The status and message of a delivery that ended: rows the destination refused are data problems,
        recorded and retried, so the run itself worked; it failed only when rows went unacknowledged and
        nothing got through."""
        # Events of unknown fate are not resent: the next run looks them up, or holds them (events.py).
        self.unsent = self.unacknowledged - (self.unconfirmed if events else 0)
        if self.unsent and not self.message:
            self.message = f"{self.unsent} rows were not acknowledged and will be resent next run"
        if not (self.rejected or self.unsent):
            self.status = "succeeded"
        else:
            self.status = "failed" if self.unsent and not self.acked else "partial"
        if self.rejected and not self.message:
            self.message = f"{self.rejected} rows refused by {self.destination}; see relay.sync_rejections"
        if self.skipped and not self.message:
            self.message = f"{self.skipped} events skipped, never to be sent; see relay.sync_skipped"
        if self.unconfirmed and not self.message and events:
            self.message = (f"{self.unconfirmed} events met answers of unknown fate and were not retried: a run "
                            f"{resend_after_s:.0f} s later looks them up at {self.destination}, or holds them where "
                            "it cannot be asked")
        if self.unconfirmed and not self.message:
            self.message = (f"{self.unconfirmed} rows were sent in requests of unknown fate (timeouts, lost "
                            f"connections); they are re-sent by the first run after {resend_after_s:.0f} s")
