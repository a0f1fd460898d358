"""The sync engine: diff a sync model against what its destination acknowledged, plan, and deliver only the
changes, advancing state strictly after acknowledgement.

State lives in the warehouse (schema `relay`, see ledger.py), so it is queryable and survives any crash. A crash
between a destination's acknowledgement and the state write only means the next run resends those rows (every
write the engine makes is idempotent at the destination); state never claims more than was delivered.

A write whose request timed out (or lost its connection, or met a gateway error) may still be applied by the
server after our retry, or after a later run's newer write, and undo it. Its records are marked unconfirmed;
the first run after RELAY_RESEND_UNCONFIRMED_S (longer than any server keeps a request) re-asserts them: the
model's row in full, or the removal, at every identifier marked.

The rooms, in the order a run visits them:
  run.py       SyncRun: claim the sync, plan, deliver, record how the run ended
  plan.py      refuse an unusable model, diff it against the state (diff.sql) within its scope (scope.py),
               count and sample the steps, the blast-radius guard
  merges.py    identity merges: a retired record merged into its survivor (sent last, once the survivor's
               write is in the state), retired or exited, and recorded; other syncs find moved rows
  changes.py   how rows are keyed and hashed, and how a step of the plan becomes a Change
  delivery.py  the delivery loop: setup, bounded concurrency, a warehouse thread for reads and writes
  chunks.py    reading the plan in chunks; the bulk path (request entries built in the warehouse)
  sender.py    one batch out and its answer settled: acknowledged, refused, split, or unsent
  state.py     acknowledgements on their way to the ledger, and the transaction that writes them
  ledger.py    the relay.* tables, their migrations, each run's row
  result.py    RunResult and SyncRefused;  settings.py  Tuning, the guard, the resend delay
  __main__.py  `python -m sinks.engine`: one sync in a child process
"""

from sinks.engine.ledger import connect
from sinks.engine.result import RunResult, SyncRefused
from sinks.engine.run import SyncRun
from sinks.engine.settings import Tuning

__all__ = ["RunResult", "SyncRefused", "SyncRun", "Tuning", "connect"]
