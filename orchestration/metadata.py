"""What a sync asset's materialization shows of its run: counts, the plan's samples and diff scope, the
destination's refusals by reason, and Relay's run id beside Dagster's. Contact details in samples are
masked: the materialization lives in Dagster's event log."""

import re

import dagster as dg

from sinks.declarations import SyncSpec

EMAIL = re.compile(r"^([^@\s])[^@\s]*(@.+)$")
PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{6,}[0-9]$")
REJECTIONS_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("reason", "string"), dg.TableColumn("rows", "int"),
    dg.TableColumn("sample_keys", "string", description="Relay record keys (relay.sync_rejections)")])


def masked(value):
    """`value` with every email and phone number masked (a***@example.com, +4*********89), recursively."""
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str) and (match := EMAIL.match(value)):
        return f"{match[1]}***{match[2]}"
    if isinstance(value, str) and PHONE.match(value):
        return value[:2] + "*" * (len(value) - 4) + value[-2:]
    return value


def sync_metadata(spec: SyncSpec, result, refusals: list[dict]) -> dict:
    metadata = {
        "status": result.status,
        "rows_added": result.acked_add,
        "rows_changed": result.acked_change,
        "rows_removed": result.acked_remove,
        "rows_merged": result.acked_merge,
        "rows_rejected": result.rejected,
        "rows_skipped": result.skipped,
        "rows_unsent": result.unsent,
        "requests": result.requests,
        "retries": result.retries,
        "throttled": result.throttled,
        "duration_s": result.duration_s,
        "rows_per_s": result.rows_per_s,
        "plan": dg.MetadataValue.json(result.plan.get("counts", {})),
        "diff_scope": dg.MetadataValue.text(str(result.plan.get("diff", "not planned"))),
        "sample_payloads": dg.MetadataValue.json(masked(result.plan.get("samples", {}))),
        "relay_run_id": dg.MetadataValue.text(result.run_id),
    }
    if result.message:
        metadata["message"] = dg.MetadataValue.text(result.message)
    if refusals:  # why the destination refused rows, with records to look up
        metadata["rejections"] = dg.MetadataValue.table(
            records=[dg.TableRecord({"reason": r["reason"], "rows": r["rows"], "sample_keys": ", ".join(r["sample_keys"])})
                     for r in refusals], schema=REJECTIONS_SCHEMA)
    if (result.plan.get("merges") or {}).get("outcomes"):  # identity merges: outcomes, the note, samples
        metadata["merges"] = dg.MetadataValue.json(masked(result.plan["merges"]))
    if spec.events:  # by event name, and by why an event will never be sent
        metadata["events"] = dg.MetadataValue.json(result.plan.get("events", {}))
        metadata["skipped_by_reason"] = dg.MetadataValue.json(result.plan.get("skipped", {}))
    return metadata
