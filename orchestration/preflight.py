"""The first step of every job: relay doctor's checks (relay/doctor.py). A wrong key, a missing setting or a
warehouse another process holds fails the run in seconds, every problem named, before dbt runs: the models
that read raw tables depend on this asset."""

import time

import dagster as dg

from relay import doctor

PREFLIGHT_KEY = dg.AssetKey(["bookkeeping", "preflight"])
FINDINGS_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("status", "string"), dg.TableColumn("subject", "string"), dg.TableColumn("finding", "string")])


@dg.asset(
    key=PREFLIGHT_KEY,
    group_name="bookkeeping",
    kinds={"python"},
    description="Settings, the warehouse, and each destination's credentials and attribute definitions, checked "
                "before dbt runs (what `relay doctor` prints). Fails the run naming every problem.",
)
def preflight(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    started = time.monotonic()
    findings = doctor.diagnose()
    table = dg.MetadataValue.table(
        [dg.TableRecord({"status": f.status, "subject": f.subject, "finding": f.text}) for f in findings],
        schema=FINDINGS_SCHEMA)
    failed = doctor.failures(findings)
    if failed:
        raise dg.Failure(description=f"{len(failed)} problems (relay doctor checks the same):\n"
                                     + "\n".join(f"{f.subject}: {f.text}" for f in failed),
                         metadata={"findings": table})
    for finding in findings:
        if finding.status == "warn":
            context.log.warning(f"{finding.subject}: {finding.text}")
    return dg.MaterializeResult(metadata={"findings": table, "seconds": round(time.monotonic() - started, 2)})
