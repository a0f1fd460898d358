"""`python -m orchestration run JOB`: one Dagster job, in this process, on the instance in DAGSTER_HOME (it
shows in the UI), against the configured destinations: what a schedule tick does, on demand. Prints the run
id and its outcome, and what stopped a failed run; exits 0 when the run succeeded, else 1.

`relay run` and `relay demo` start it as a child process, once the emulators it needs are running."""

import argparse
import contextlib
import sys
import time

import dagster as dg

from orchestration.alerts import MAX_ERROR_LINES, alert, error_lines, partial_syncs, step_errors
from relay import config, pipeline


def print_failures(result) -> int:
    """What stopped the run (failed steps) and every check that did not pass, even in a run that succeeded (a
    warning check does not stop one): a dbt test names the rows in its audit table. Returns the checks."""
    checks = 0
    for event in result.all_events:
        data = event.event_specific_data
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and not data.passed:
            checks += 1
            print(f"  check failed ({data.severity.value.lower()}): {data.check_name} on "
                  f"{data.asset_key.to_user_string()}{_check_detail(data)}")
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            lines = error_lines(data.error.message if data.error else "")
            print(f"  step failed: {event.step_key}: {lines[0] if lines else ''}")
            for line in lines[1:MAX_ERROR_LINES]:
                print(f"    {line}")
        elif event.event_type == dg.DagsterEventType.STEP_SKIPPED:
            print(f"  step skipped: {event.step_key}")
    return checks



def _check_detail(data) -> str:
    """The check's own figures, briefly: a freshness check's lag, a rejections check's count."""
    shown = {k: v.value for k, v in (data.metadata or {}).items()
             if k in ("lag_hours", "status", "rejected", "dagster_dbt/failed_row_count") and v.value is not None}
    return f" ({', '.join(f'{k} {v}' for k, v in shown.items())})" if shown else ""


def run(defs: dg.Definitions, job: str, verbose: bool = False) -> int:
    """Quiet unless `verbose`: Dagster's console logger is off, and what dbt prints goes to data/logs/JOB.log (the UI
    and dbt's own log have it all)."""
    started = time.monotonic()
    # Quiet, the summary below says what failed, once (Dagster's console would print each error in full twice).
    run_config = {} if verbose else {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    log = config.data_dir() / "logs" / f"{job}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with dg.DagsterInstance.get() as instance, \
            (contextlib.nullcontext() if verbose else contextlib.redirect_stdout(log.open("w"))):
        result = defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False,
                                                              run_config=run_config)
    print(f"run {result.run_id} of {job}: {'succeeded' if result.success else 'FAILED'} "
          f"in {time.monotonic() - started:.1f}s")
    checks = print_failures(result)
    if not result.success and not verbose and log.stat().st_size:
        print(f"  dbt's output: {log}")
    elif checks:
        print(f"  {checks} checks did not pass: their asset pages in the Dagster UI have the details")
    # No sensor sees a run started here: alert as run_failure_alert and run_partial_alert would.
    partial = partial_syncs(result.all_events) if result.success else []
    if not result.success or partial:
        failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        alert(result.run_id, job, "failed" if not result.success else "partial",
              step_errors(failures) if failures else "rows refused by the destination: see relay rejections",
              [e.step_key for e in failures] or partial, launched_by="python -m orchestration run")
    return 0 if result.success else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration", description="Run Relay's Dagster jobs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a Dagster job now, in this process")
    p.add_argument("job")
    p.add_argument("-v", "--verbose", action="store_true", help="Dagster's and dbt's logs on the console")
    args = parser.parse_args(argv)
    config.export_environment()
    pipeline.manifest_path(ensure=True)
    from orchestration.definitions import defs  # loading it needs the manifest

    jobs = sorted(job.name for job in defs.jobs)
    if args.job not in jobs:
        parser.error(f"unknown job {args.job!r}; the jobs are {', '.join(jobs)}")
    return run(defs, args.job, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
