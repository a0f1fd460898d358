"""`relay`: the project's command line. Run `relay --help`."""

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb

from relay import config, console, emulator_process, pipeline

FAILED = ("failed", "refused")


def cmd_sample_data(args) -> int:
    from relay import sample_data

    config.export_environment()
    started = time.monotonic()
    if args.append_hours:
        counts = sample_data.append(config.warehouse_path(), args.append_hours, offer_lift=args.offer_lift)
        what = f"appended {args.append_hours}h of activity" + (
            f" (offer lift {args.offer_lift:g}: _relay_sample.offer_planted)" if args.offer_lift else "")
    else:
        as_of = datetime.fromisoformat(args.as_of) if args.as_of else None
        counts = sample_data.generate(config.warehouse_path(), args.customers, seed=args.seed, as_of=as_of)
        what = f"generated {args.customers} customers (seed {args.seed})"
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps({"tables": counts, "seconds": round(elapsed, 2)}))
    else:
        print(f"{what} in {elapsed:.1f}s into {config.warehouse_path()}")
        for table, n in counts.items():
            print(f"  {table:<40} {n:>12,}")
    return 0


def cmd_build(args) -> int:
    pipeline.prepare_manifest()
    extra = ["--select", args.select] if args.select else []
    if args.as_of:
        extra += ["--vars", json.dumps({"as_of": args.as_of})]
    if args.full_refresh:
        extra.append("--full-refresh")
    started = time.monotonic()
    quiet = [] if args.verbose else ["--log-level", "warn"]  # dbt's warnings and errors only (-v: everything)
    code = pipeline.run_dbt("build", *extra, *quiet, check=False).returncode
    print(f"dbt build {'passed' if code == 0 else 'FAILED'} in {time.monotonic() - started:.1f}s")
    if code == 0:  # a failed build is not what stakeholders should read
        _publish()
    return code


def _publish(quiet: bool = False) -> None:
    """Refresh the stakeholder copy after a command wrote the warehouse, so a query right after sees it."""
    from relay.publish import publish

    published = publish()
    if not quiet:  # --json output stays one document
        print(f"published the stakeholder copy ({published['seconds']:.1f}s, {published['written_bytes'] / 1e6:.0f} MB "
              "written): relay query reads it")


def _run_syncs(args, apply: bool) -> int:
    specs = pipeline.sync_specs(args.syncs, getattr(args, "schedule", None))
    # A plan sends nothing; a delivery to an emulator needs one running.
    needed = apply and emulator_process.emulators_needed({spec.destination for spec in specs})
    with emulator_process.running_emulators(needed):
        return _deliver(args, specs, apply)


def _deliver(args, specs, apply: bool) -> int:
    results = _deliver_each(args, specs, apply)
    if apply and results:  # the ledger changed: rejections and state are what stakeholders query next
        _publish(quiet=args.json)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], default=str))
    refused = [r for r in results if r.status == "partial" and r.rejected]
    if refused and not getattr(args, "allow_rejections", False):
        for r in refused:
            print(f"relay sync: {r.sync_name}: {r.rejected} rows refused by {r.destination}; see "
                  f"`relay rejections {r.sync_name}` (--allow-rejections exits 0 on refused rows)", file=sys.stderr)
    return 1 if any(r.status in FAILED or r.unsent for r in results) or (
        refused and not getattr(args, "allow_rejections", False)) else 0


def _deliver_each(args, specs, apply: bool) -> list:
    results = []
    for spec in specs:
        result = pipeline.run_sync(
            spec, apply=apply, full_resync=getattr(args, "full_resync", False),
            allow_large_change=getattr(args, "allow_large_change", False),
            progress=None if args.json else console.progress(spec.name),
        )
        results.append(result)
        if not args.json:
            console.print_run(result)
            if not apply:
                console.print_plan(result.plan)
    return results


def cmd_plan(args) -> int:
    return _run_syncs(args, apply=False)


def cmd_sync(args) -> int:
    return _run_syncs(args, apply=True)


def _unhealthy_syncs() -> list[str]:
    """Syncs whose latest delivery (apply run) failed, was refused, did not finish or left rows unacknowledged,
    or whose plan since then was refused or failed (the next delivery would be too). Only the latest run of each
    mode counts: a sync that succeeded after an earlier failure is healthy."""
    from sinks.engine import connect

    with connect(config.warehouse_path(), read_only=True) as con:
        latest = con.execute("""
            select sync_name, mode, status, coalesce(unsent, 0) from (
                select *, max(started_at) filter (where mode = 'apply') over (partition by sync_name) as last_apply
                from relay.sync_runs
                qualify row_number() over (partition by sync_name, mode order by started_at desc) = 1)
            where mode = 'apply' or last_apply is null or started_at > last_apply
            order by sync_name, mode""").fetchall()
    # 'running' here means its process is gone: a live run holds the warehouse, and this could not open it.
    return [f"{name}: {mode} {status}" + (f", {unsent} rows unacknowledged" if unsent else "")
            for name, mode, status, unsent in latest if status in (*FAILED, "abandoned", "running") or unsent]


def cmd_status(args) -> int:
    if args.limit < 0:
        raise ValueError(f"--limit is {args.limit}; expected 0 or more runs to list")
    runs = pipeline.last_runs(args.limit)
    ever = bool(runs) or bool(pipeline.last_runs(1))  # --limit 0 lists none, and still judges health
    unhealthy = _unhealthy_syncs() if ever else []
    if args.json:
        print(json.dumps(runs, default=str))
    elif not ever:
        print("no sync runs yet")
    elif runs:
        print(f"{'started':<20} {'sync':<36} {'mode':<6} {'status':<10} {'planned':>8} {'acked':>8} {'rejected':>8} {'rows/s':>8}")
        for r in runs:
            planned = (r["planned_add"] or 0) + (r["planned_change"] or 0) + (r["planned_remove"] or 0)
            acked = (r["acked_add"] or 0) + (r["acked_change"] or 0) + (r["acked_remove"] or 0)
            print(f"{str(r['started_at'])[:19]:<20} {r['sync_name']:<36} {r['mode']:<6} {r['status']:<10} "
                  f"{planned:>8} {acked:>8} {r['rejected'] or 0:>8} {r['rows_per_s'] or 0:>8.0f}")
            if r["message"] and r["status"] != "succeeded":
                print(f"{'':<21}{r['message'][:160]}")
    for line in unhealthy:  # on stderr, so that --json output stays one document
        print(f"relay status: unhealthy: {line}", file=sys.stderr)
    return 1 if unhealthy else 0


def cmd_query(args) -> int:
    from relay.publish import connect_published

    with connect_published() as con:
        try:
            relation = con.sql(args.sql)
            if relation is None:
                return 0
            if args.json:
                names = relation.columns
                print(json.dumps([dict(zip(names, row)) for row in relation.fetchall()], default=str))
            else:
                relation.show(max_rows=args.max_rows)
        except duckdb.Error as exc:  # the user's SQL: DuckDB's message, on one line
            print(f"relay query: {type(exc).__name__}: {' '.join(str(exc).split())[:500]}", file=sys.stderr)
            return 1
    return 0


def cmd_rejections(args) -> int:
    """Open rejections (not delivered since), by reason with sample keys; --json lists every one."""
    from relay import rejections
    from sinks.engine import connect

    if args.sync:
        pipeline.sync_specs([args.sync])  # an unknown name exits, listing the known ones
    with connect(config.warehouse_path(), read_only=True) as con:
        try:
            rows = rejections.open_rejections(con, args.sync) if args.json else rejections.by_reason(con, sync=args.sync)
        except duckdb.CatalogException:
            rows = []  # no sync ever ran here
    if args.json:
        print(json.dumps(rows, default=str))
    elif not rows:
        print("no open rejections")
    for r in rows if not args.json else []:
        print(f"{r['rows']:>7}  {r['sync_name']:<36} {r['reason'][:160]}")
        print(f"{'':>9}e.g. {', '.join(r['sample_keys'])}")
    return 0


def cmd_publish(args) -> int:
    from relay.publish import publish

    print(json.dumps(publish()))
    return 0


def cmd_doctor(args) -> int:
    """Everything a run needs, checked at once (relay/doctor.py); in emulator mode, against the emulators,
    started like a sync starts them."""
    from relay import doctor

    config.export_environment()
    started = time.monotonic()
    pipeline.manifest_path(ensure=True)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(emulator_process.running_emulators(_emulators_usable()))
        except config.ConfigError:
            pass  # a setting the emulators need is malformed: the doctor lists it with the rest
        findings = doctor.diagnose()
    failed = doctor.failures(findings)
    if args.json:
        print(json.dumps([vars(f) for f in findings]))
        return 1 if failed else 0
    print(doctor.report(findings))
    took = time.monotonic() - started
    print(f"{len(failed)} problems found in {took:.1f}s: fix them all, then run relay doctor again" if failed
          else f"ready to run ({took:.1f}s)")
    return 1 if failed else 0


def _emulators_usable() -> bool:
    """Whether the destinations call the emulators (a malformed RELAY_DESTINATIONS is the doctor's to report)."""
    try:
        return emulator_process.emulators_needed()
    except config.ConfigError:
        return False


def cmd_report(args) -> int:
    from relay import report

    path = report.write(Path(args.output).resolve() if args.output else None)
    print(f"wrote {path}: open it in a browser")
    return 0


def cmd_contract(args) -> int:
    from relay import contract

    if args.update_readme:
        changed = contract.update_readme()
        print("README.md contract section " + ("updated" if changed else "already up to date"))
    else:
        print(contract.markdown())
    return 0


def cmd_emulators(args) -> int:
    """The emulators in place of this process (its signals and exit status become theirs), keeping this data
    directory's state unless --state-dir says otherwise, on the address the clients use unless options say so."""
    command = [sys.executable, "-m", "emulators", "--state-dir", str(emulator_process.state_dir()), *args.rest]
    sys.stdout.flush()
    os.execv(sys.executable, command)


def cmd_dev(args) -> int:
    """`dagster dev` on 127.0.0.1, inside running_emulators (so its runs reach them); Ctrl-C or SIGTERM stops
    both."""
    config.export_environment()
    pipeline.prepare_manifest()
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "dev", "-h", "127.0.0.1", "-p", str(args.port), "-m", "orchestration.definitions"]

    def default_signals() -> None:  # a background shell may have started us ignoring them (pitfall 9)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    with emulator_process.running_emulators(emulator_process.emulators_needed()):
        process = subprocess.Popen(command, preexec_fn=default_signals)
        previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
        try:
            try:
                return process.wait()
            except KeyboardInterrupt:  # from a terminal, dagster has it too: give it a moment to stop by itself
                try:
                    return process.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    process.terminate()
                    return process.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)


def _run_job(job: str, verbose: bool = False) -> int:
    """`python -m orchestration run JOB` in a child process, with the emulators it needs running (it inherits
    the environment export_environment and running_emulators set). Its output passes through sys.stdout, so a
    caller that redirects it sees the run's outcome too."""
    command = [sys.executable, "-m", "orchestration", "run", job, *(["--verbose"] if verbose else [])]
    with emulator_process.running_emulators(emulator_process.emulators_needed()):
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
            for line in child.stdout:
                print(line, end="")
    return 0 if child.returncode == 0 else 1


def cmd_demo(args) -> int:
    """Sample data (once), then the Dagster job every schedule runs (dbt build, syncs to the local
    emulators, stakeholder copy), then a summary."""
    from relay import sample_data

    config.export_environment()
    os.environ.setdefault("RELAY_DESTINATIONS", "emulator")
    started, started_at = time.monotonic(), datetime.utcnow()
    if args.regenerate or not config.warehouse_path().exists():
        customers = args.customers or config.number("RELAY_DEMO_CUSTOMERS")
        print(f"== sample data: {customers} customers")
        t = time.monotonic()
        sample_data.generate(config.warehouse_path(), customers, seed=args.seed)
        print(f"   {time.monotonic() - t:.1f}s")
    pipeline.prepare_manifest()
    print("== Dagster job daily_full: dbt build -> syncs to the local emulators -> stakeholder copy", flush=True)
    code = _run_job("daily_full", args.verbose)
    print("   see the run in the Dagster UI: make dev")
    if code == 0:  # a failed run said what failed: there is nothing to sum up
        console.print_summary(started_at)
        from relay import report

        print(f"== stakeholders: relay query reads the published copy; the report is {report.report_path()}")
    print(f"demo finished in {time.monotonic() - started:.1f}s")
    return code


def cmd_run(args) -> int:
    """One Dagster job on the instance in DAGSTER_HOME (it shows in the UI), against the configured
    destinations: what a schedule tick does, on demand."""
    config.export_environment()
    pipeline.prepare_manifest()
    started_at = datetime.utcnow()
    code = _run_job(args.job, args.verbose)
    runs = console.print_syncs(started_at) if config.warehouse_path().exists() else []
    refused = [(name, rejected) for name, status, _, _, rejected, *_ in runs if status == "partial" and rejected]
    for name, rejected in refused if not args.allow_rejections else []:
        print(f"relay run: {name}: {rejected} rows refused; see `relay rejections {name}` (--allow-rejections exits "
              f"0 on refused rows)", file=sys.stderr)
    return code or (1 if refused and not args.allow_rejections else 0)


def _add_data_commands(sub) -> None:
    p = sub.add_parser("sample-data", help="generate deterministic sample raw data, or append hours of activity")
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--as-of", help="end of the generated history (ISO timestamp, UTC); default 2026-11-01T00:00:00")
    p.add_argument("--append-hours", type=int, help="append the next H hours of activity to existing data instead")
    p.add_argument("--offer-lift", type=float, default=0.0,
                   help="with --append-hours, after a build: the winback and cart offers work; those they reach "
                        "who would not have bought buy with the code with this probability (each planted "
                        "conversion: _relay_sample.offer_planted)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sample_data)

    p = sub.add_parser("build", help="dbt build (models, tests, snapshots)")
    p.add_argument("--select", help="dbt selection, e.g. tag:frequent")
    p.add_argument("--as-of", help="build the world as it stood at this UTC timestamp: what appeared later does not exist "
                                   "(default: the newest landed activity)")
    p.add_argument("--full-refresh", action="store_true",
                   help="recompute every model from all the data (default: only what changed since the last complete build)")
    p.set_defaults(func=cmd_build)


def _add_sync_commands(sub) -> None:
    for name, func, text in (("plan", cmd_plan, "compute and record what each sync would send, without sending"),
                             ("sync", cmd_sync, "send each sync's changes to its destination")):
        p = sub.add_parser(name, help=text)
        p.add_argument("syncs", nargs="*", help="sync model names (default: all)")
        p.add_argument("--schedule", choices=["frequent", "daily"], help="only syncs on this schedule")
        p.add_argument("--full-resync", action="store_true", help="resend every row, not only changes")
        p.add_argument("--allow-large-change", action="store_true", help="approve a run the blast-radius guard refuses")
        if name == "sync":
            p.add_argument("--allow-rejections", action="store_true",
                           help="exit 0 when a destination refused rows (they are recorded: relay rejections)")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)


def cmd_segments(args) -> int:
    from relay import segments

    rows = segments.report(config.warehouse_path(), pipeline.prepare_manifest())
    if args.json:
        print(json.dumps(rows, default=str))
        return 0
    for row in rows:
        size = "not built yet" if row["members"] is None else f"{row['members']:,} members"
        if row["selected"] is not None and row["members"] is not None and row["selected"] != row["members"]:
            size += f" ({row['selected'] - row['members']:,} of the {row['selected']:,} it selects removed by the guardrails)"
        print(f"{row['name']:<32} {row['category']:<15} {row.get('schedule') or 'frequent':<9} {size}")
        for destination, sync in row["syncs"].items():
            print(f"    {destination:<11} {sync['audience']:<40} holds {sync['holds']:>7,}   next sync: "
                  f"+{sync['enter'] or 0:,} enter, -{sync['exit']:,} exit")
        if not row["syncs"]:
            print("    not sent to any destination")
    return 0


def _add_read_commands(sub) -> None:
    p = sub.add_parser("segments", help="every segment: size now, destinations and names, what the next sync changes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_segments)

    p = sub.add_parser("status", help="the last sync runs")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("rejections", help="rows destinations refused and nothing delivered since, by reason")
    p.add_argument("sync", nargs="?", help="one sync model (default: all)")
    p.add_argument("--json", action="store_true", help="every open rejection, one object each")
    p.set_defaults(func=cmd_rejections)

    p = sub.add_parser("query", help="run SQL on the published read-only copy of the warehouse (safe during runs)")
    p.add_argument("sql")
    p.add_argument("--json", action="store_true")
    p.add_argument("--max-rows", type=int, default=40)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("publish", help="publish the stakeholder copy now (runs do this after every sync)")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("report", help="write the stakeholders' HTML report (offers' lift, audience health, segment "
                                      "catalog) from the published copy; every job writes it too")
    p.add_argument("--output", help="where to write it (default: beside the published copy, report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("doctor", help="check every setting, the warehouse and each destination's credentials, all at once")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("contract", help="print the raw-data contract (from the dbt sources YAML) as Markdown")
    p.add_argument("--update-readme", action="store_true", help="rewrite the README's contract section")
    p.set_defaults(func=cmd_contract)


def _add_run_commands(sub) -> None:
    # Its options are python -m emulators's (relay emulators --help), parsed there.
    p = sub.add_parser("emulators", add_help=False,
                       help="serve the local Customer.io, Cordial and Talon.One emulators (--help: address, faults, limits)")
    p.set_defaults(func=cmd_emulators)

    p = sub.add_parser("dev", help="the Dagster UI and daemon (dagster dev), with emulators running when in emulator mode")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser("run", help="run a Dagster job now, in a process of its own (frequent_path or daily_full)")
    p.add_argument("job", choices=["frequent_path", "daily_full"])
    p.add_argument("--allow-rejections", action="store_true",
                   help="exit 0 when a destination refused rows (they are recorded: relay rejections)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="sample data -> dbt -> syncs to the emulators -> summary")
    p.add_argument("--customers", type=int, help="customers to generate (default: RELAY_DEMO_CUSTOMERS, else 5000)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--regenerate", action="store_true", help="regenerate the sample data even if a warehouse exists")
    p.set_defaults(func=cmd_demo)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("relay")
    except PackageNotFoundError:  # run from a checkout without installing it
        return "unknown (not installed)"


def _dispatch(args) -> int:
    """The command, with the errors a user can act on as one line instead of a traceback."""
    try:
        return args.func(args)
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"relay {args.command}: {exc}", file=sys.stderr)
        return 1
    except duckdb.IOException as exc:
        if "lock" not in str(exc):
            raise
        # DuckDB lets one process hold the file: most likely a run is writing it right now.
        print(f"relay {args.command}: the warehouse is in use by another process ({str(exc).splitlines()[0][:200]}). "
              f"Try again when it has finished; to read meanwhile, use `relay query` (the published copy).",
              file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relay", description="Warehouse-native retention activation.")
    parser.add_argument("--version", action="version", version=f"relay {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="Dagster's and dbt's logs on the console (default: warnings and errors only)")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_commands in (_add_data_commands, _add_sync_commands, _add_read_commands, _add_run_commands):
        add_commands(sub)
    args, rest = parser.parse_known_args(argv)
    if args.command == "emulators":
        args.rest = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return _dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
