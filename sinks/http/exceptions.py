"""How a request that could not be delivered fails: its rows stay unacknowledged for the next run."""


class RetriesExhausted(RuntimeError):
    """A request kept failing with retryable errors; its rows stay unacknowledged for the next run."""


class EmulatorUnreachable(RetriesExhausted):
    """Emulator mode, and nothing listens at the emulator's address on this machine: not worth a retry."""

    def __init__(self, origin: str) -> None:
        super().__init__(f"nothing is listening at {origin} (connection refused), where RELAY_DESTINATIONS=emulator "
                         f"expects a destination emulator: start the emulators with `relay emulators` "
                         f"(RELAY_EMULATOR_HOST and RELAY_EMULATOR_BASE_PORT move them)")


class FateUnknown(RuntimeError):
    """A write the destination applies as often as it receives it (`Request(once=True)`) met an answer of unknown
    fate: it may have landed, so it is not tried again; the caller settles it (sinks/engine/events.py)."""
