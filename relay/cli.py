"""`relay`: the project's command line. Run `relay --help`."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import httpx

from relay import config, pipeline

FAILED = ("failed", "refused")


def _progress(label: str):
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        sys.stderr.write(f"\r  {label:<40} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report


def _print_run(r) -> None:
    line = (f"  {r.sync_name:<36} {r.status:<9} add={r.planned_add} change={r.planned_change} "
            f"remove={r.planned_remove}")
    if r.mode == "apply":
        line += (f" | acked={r.acked} rejected={r.rejected} unsent={r.unsent} requests={r.requests} "
                 f"retries={r.retries} {r.rows_per_s:.0f} rows/s")
    print(line)
    if r.message:
        print(f"    {r.message}")


def cmd_sample_data(args) -> int:
    from relay import sample_data

    config.export_environment()
    started = time.monotonic()
    if args.append_hours:
        counts = sample_data.append(config.warehouse_path(), args.append_hours)
        what = f"appended {args.append_hours}h of activity"
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
    extra = ["--select", args.select] if args.select else []
    if args.as_of:
        extra += ["--vars", json.dumps({"as_of": args.as_of})]
    if args.full_refresh:
        extra.append("--full-refresh")
    return pipeline.run_dbt("build", *extra, check=False).returncode


def _run_syncs(args, apply: bool) -> int:
    specs = pipeline.sync_specs(args.syncs, getattr(args, "schedule", None))
    # A plan sends nothing; a delivery to an emulator needs one running.
    needed = apply and emulators_needed({spec.destination for spec in specs})
    with running_emulators(needed):
        return _deliver(args, specs, apply)


def _deliver(args, specs, apply: bool) -> int:
    results = []
    for spec in specs:
        result = pipeline.run_sync(
            spec, apply=apply, full_resync=getattr(args, "full_resync", False),
            allow_large_change=getattr(args, "allow_large_change", False),
            progress=None if args.json else _progress(spec.name),
        )
        results.append(result)
        if not args.json:
            _print_run(result)
            if not apply:
                for kind, samples in result.plan.get("samples", {}).items():
                    for sample in samples:
                        print(f"      {kind}: {json.dumps(sample, default=str)[:300]}")
    if args.json:
        print(json.dumps([r.as_dict() for r in results], default=str))
    return 1 if any(r.status in FAILED or r.unsent for r in results) else 0


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
    runs = pipeline.last_runs(args.limit)
    unhealthy = _unhealthy_syncs() if runs else []
    if args.json:
        print(json.dumps(runs, default=str))
    elif not runs:
        print("no sync runs yet")
    else:
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
        relation = con.sql(args.sql)
        if relation is None:
            return 0
        if args.json:
            names = relation.columns
            print(json.dumps([dict(zip(names, row)) for row in relation.fetchall()], default=str))
        else:
            relation.show(max_rows=args.max_rows)
    return 0


def cmd_publish(args) -> int:
    from relay.publish import publish

    print(json.dumps(publish()))
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
    """The emulators in this process, on the address the clients use unless options say otherwise."""
    from sinks.emulators import __main__ as emulators_main

    return emulators_main.main(args.rest, prog="relay emulators",
                               defaults={"state_dir": config.data_dir() / "emulators"})


EMULATORS = ("customerio", "cordial", "talon_one")


def _emulator_state_dir():
    return config.data_dir() / "emulators"


def probe_emulator(name: str, url: str) -> tuple[str, str]:
    """What answers at `url` in place of destination `name`'s emulator, for this process:
    ("usable", pid): an emulator serving this data directory's state that accepts this process's credentials;
    ("free", ""): nothing listens there;
    ("refuses", variables): this data directory's emulator, started with other credentials;
    ("other", what): anything else (another data directory's emulator, or not an emulator at all)."""
    from sinks import destinations
    from sinks.http import connection_refused

    expected = str((_emulator_state_dir() / f"{name}.json").resolve())
    try:
        response = httpx.get(f"{url}/_emulator/info", timeout=1)
        info = response.json() if response.status_code == 200 else None
    except httpx.ConnectError as exc:
        return ("free", "") if connection_refused(exc) else ("other", f"cannot connect ({exc})")
    except (httpx.HTTPError, ValueError):
        info = None
    if not isinstance(info, dict) or "state_file" not in info:
        return "other", "something that is not a Relay emulator"
    if info["state_file"] != expected:
        return "other", f"an emulator serving {info.get('state_dir') or 'no state directory'}"
    for group, (variables, header) in destinations.emulator_credential_checks(name).items():
        if group in info.get("auth_groups", ()):
            try:
                answer = httpx.get(f"{url}/_emulator/auth/{group}", headers={"Authorization": header}, timeout=2)
            except httpx.HTTPError:
                return "other", "an emulator that did not answer a credential check"
            if answer.status_code != 200:
                return "refuses", variables
    return "usable", str(info.get("pid"))


def _can_listen(host: str, ports) -> bool:
    from sinks.emulators.base import CannotListen, listen

    sockets = []
    try:
        for port in ports:
            sockets.append(listen(host, port))
        return True
    except CannotListen:
        return False
    finally:
        for sock in sockets:
            sock.close()


def _free_ports(host: str) -> dict[str, int]:
    from sinks.emulators.base import listen

    sockets = [listen(host, 0) for _ in EMULATORS]
    try:
        return {name: sock.getsockname()[1] for name, sock in zip(EMULATORS, sockets)}
    finally:
        for sock in sockets:
            sock.close()


def _start_emulators(host: str, ports: dict[str, int]) -> subprocess.Popen | None:
    """`python -m sinks.emulators` for this data directory on `ports`; the process once all three answer to
    this process's credentials, None when it could not listen. Its log: <data dir>/emulators/emulators.log."""
    from sinks.emulators.__main__ import EXIT_CANNOT_LISTEN

    state_dir = _emulator_state_dir()
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "emulators.log"
    command = [sys.executable, "-m", "sinks.emulators", "--state-dir", str(state_dir), "--host", host,
               "--log-level", "WARNING"]
    for name, port in ports.items():
        command += [f"--{name.replace('_', '-')}-port", str(port)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, env=os.environ.copy(), start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=log)
    urls = {name: _url(host, port) for name, port in ports.items()}
    deadline = time.monotonic() + 30
    while True:
        found = {name: probe_emulator(name, url) for name, url in urls.items()}
        if all(found[n] == ("usable", str(process.pid)) for n in EMULATORS):
            return process
        if process.poll() is not None:
            if process.returncode == EXIT_CANNOT_LISTEN:
                return None
            raise RuntimeError(f"the destination emulators exited ({process.returncode}); see {log_path}")
        if time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"the destination emulators did not start within 30 s; see {log_path}")
        time.sleep(0.1)


def _url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def emulators_needed(names=EMULATORS) -> bool:
    """Whether any of these destinations calls its emulator here (emulator mode, no *_URL override), on this
    machine, with autostart on (RELAY_EMULATOR_AUTOSTART=0 turns it off)."""
    from sinks import destinations
    from sinks.http import is_loopback

    if os.environ.get("RELAY_EMULATOR_AUTOSTART", "1") in ("0", "false", "no"):
        return False
    return is_loopback(destinations.emulator_host()) and any(destinations.uses_emulator(n) for n in names)


@contextmanager
def running_emulators(needed: bool = True):
    """For the block, emulators this process can use: the ones at the configured address (RELAY_EMULATOR_HOST,
    RELAY_EMULATOR_BASE_PORT) when they serve this data directory and accept this process's credentials, else
    emulators of its own, on the configured ports if they are free and on free ones if not. The environment of
    this process (and of what it starts) then points the clients at them."""
    from sinks import destinations

    if not needed:
        yield
        return
    host = destinations.emulator_host()
    found = {name: probe_emulator(name, destinations.emulator_url(name)) for name in EMULATORS}
    states = {state for state, _ in found.values()}
    if states == {"usable"}:
        yield
        return
    state_dir = _emulator_state_dir()
    if states & {"usable", "refuses"}:
        # This data directory's emulators are up: a second set would write the same state files.
        refused = [f"{n} at {destinations.emulator_url(n)} refuses {what}" for n, (state, what) in found.items()
                   if state == "refuses"]
        missing = [f"{n} at {destinations.emulator_url(n)}" for n, (state, _) in found.items()
                   if state in ("free", "other")]
        why = (f"they were started with other credentials ({'; '.join(refused)})" if refused else
               f"some do not answer ({', '.join(missing)})")
        raise RuntimeError(f"the emulators of {state_dir} are running, but {why}. Stop them, then start them again "
                           f"with this environment: relay emulators")
    ports = {name: destinations.emulator_port(name) for name in EMULATORS}
    holders: dict[str, list[str]] = {}  # what holds configured ports -> those ports
    for name, (state, what) in found.items():
        if state == "other":
            holders.setdefault(what, []).append(str(ports[name]))
    taken = [f"{host} port {', '.join(held)} has {what}" for what, held in holders.items()]
    process = None
    if not taken:
        if _can_listen(host, ports.values()):
            process = _start_emulators(host, ports)
        taken = [] if process else [f"{host} ports {', '.join(map(str, ports.values()))} cannot all be bound"]
    if process is None:  # taken, or taken meanwhile: free ports, told to the clients below
        ports = _free_ports(host)
        process = _start_emulators(host, ports)
        if process is None:
            raise RuntimeError(f"the destination emulators could not listen on {host}; see {state_dir / 'emulators.log'}")
    where = ", ".join(f"{n} {_url(host, p)}" for n, p in ports.items())
    print(f"relay: started the emulators of {state_dir} ({where})" + (f", because {'; '.join(taken)}" if taken else ""),
          file=sys.stderr)
    saved = {var: os.environ.get(var) for var in
             ["RELAY_EMULATOR_HOST", *(f"RELAY_EMULATOR_{n.upper()}_PORT" for n in EMULATORS)]}
    os.environ["RELAY_EMULATOR_HOST"] = host
    for name, port in ports.items():
        os.environ[f"RELAY_EMULATOR_{name.upper()}_PORT"] = str(port)
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        _stop(process)


def cmd_dev(args) -> int:
    """`dagster dev` on 127.0.0.1, inside running_emulators (so its runs reach them); Ctrl-C or SIGTERM stops
    both."""
    config.export_environment()
    pipeline.manifest_path(ensure=True)
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "dev", "-h", "127.0.0.1", "-p", str(args.port), "-m", "orchestration.definitions"]

    def default_signals() -> None:  # a background shell may have started us ignoring them (pitfall 9)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    with running_emulators(emulators_needed()):
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


def cmd_demo(args) -> int:
    """Sample data (once), then the Dagster job every schedule runs (dbt build, syncs to the local
    emulators, stakeholder copy), then a summary."""
    import dagster as dg

    from relay import sample_data

    config.export_environment()
    os.environ.setdefault("RELAY_DESTINATIONS", "emulator")
    started, started_at = time.monotonic(), datetime.utcnow()
    if args.regenerate or not config.warehouse_path().exists():
        print(f"== sample data: {args.customers} customers")
        t = time.monotonic()
        sample_data.generate(config.warehouse_path(), args.customers, seed=args.seed)
        print(f"   {time.monotonic() - t:.1f}s")
    pipeline.manifest_path(ensure=True)
    from orchestration.definitions import defs

    print("== Dagster job daily_full: dbt build -> syncs to the local emulators -> stakeholder copy")
    with running_emulators(emulators_needed()), dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def("daily_full").execute_in_process(instance=instance, raise_on_error=False)
    print(f"   run {result.run_id}: {'succeeded' if result.success else 'FAILED'} "
          f"(see it in the Dagster UI: make dev)")
    _print_summary(started_at)
    print(f"demo finished in {time.monotonic() - started:.1f}s")
    return 0 if result.success else 1


def cmd_run(args) -> int:
    """One Dagster job, in this process, on the instance in DAGSTER_HOME (it shows in the UI), against
    the configured destinations: what a schedule tick does, on demand."""
    import dagster as dg

    config.export_environment()
    pipeline.manifest_path(ensure=True)
    from orchestration.definitions import defs

    started = time.monotonic()
    with running_emulators(emulators_needed()), dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def(args.job).execute_in_process(instance=instance, raise_on_error=False)
    print(f"run {result.run_id} of {args.job}: {'succeeded' if result.success else 'FAILED'} "
          f"in {time.monotonic() - started:.1f}s")
    if not result.success:
        _print_failures(result)
    return 0 if result.success else 1


def _print_failures(result) -> None:
    """What stopped the run: failed checks (a dbt test names the rows in its audit table), failed steps."""
    import dagster as dg

    for event in result.all_events:
        data = event.event_specific_data
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and not data.passed:
            print(f"  check failed: {data.check_name} on {data.asset_key.to_user_string()}")
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            message = (data.error.message if data.error else "").strip().splitlines()
            print(f"  step failed: {event.step_key}: {message[0] if message else ''}")
        elif event.event_type == dg.DagsterEventType.STEP_SKIPPED:
            print(f"  step skipped: {event.step_key}")


def _print_summary(since: datetime) -> None:
    from sinks.engine import connect

    summary = pipeline.warehouse_summary()
    print("== rows per layer")
    for schema, tables in summary["layers"].items():
        print(f"   {schema:<12} {len(tables):>3} tables {sum(tables.values()):>12,} rows")
    with connect(config.warehouse_path(), read_only=True) as con:  # the run is over: nothing else holds the file
        segments = con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by 1").fetchall()
        print("== marts")
        for (table,) in segments:
            print(f"   marts.{table:<38} {summary['layers']['marts'][table]:>10,}")
        runs = con.execute(
            "select sync_name, status, planned_add + planned_change + planned_remove, acked_add + acked_change + acked_remove, "
            "rejected, requests, rows_per_s from relay.sync_runs "
            "where started_at >= ? order by sync_name", [since]).fetchall()
    print("== syncs in this run (destination now holds)")
    for name, status, planned, acked, rejected, requests, rate in runs:
        print(f"   {name:<38} {status:<9} changes={planned:<7} acked={acked:<7} rejected={rejected:<5} "
              f"requests={requests:<5} holds={summary['synced'].get(name, 0):,}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relay", description="Warehouse-native retention activation.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample-data", help="generate deterministic sample raw data, or append hours of activity")
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--as-of", help="end of the generated history (ISO timestamp, UTC); default 2026-11-01T00:00:00")
    p.add_argument("--append-hours", type=int, help="append the next H hours of activity to existing data instead")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sample_data)

    p = sub.add_parser("build", help="dbt build (models, tests, snapshots)")
    p.add_argument("--select", help="dbt selection, e.g. tag:frequent")
    p.add_argument("--as-of", help="build the world as it stood at this UTC timestamp: what appeared later does not exist "
                                   "(default: the newest landed activity)")
    p.add_argument("--full-refresh", action="store_true",
                   help="recompute every model from all the data (default: only what changed since the last complete build)")
    p.set_defaults(func=cmd_build)

    for name, func, text in (("plan", cmd_plan, "compute and record what each sync would send, without sending"),
                             ("sync", cmd_sync, "send each sync's changes to its destination")):
        p = sub.add_parser(name, help=text)
        p.add_argument("syncs", nargs="*", help="sync model names (default: all)")
        p.add_argument("--schedule", choices=["frequent", "daily"], help="only syncs on this schedule")
        p.add_argument("--full-resync", action="store_true", help="resend every row, not only changes")
        p.add_argument("--allow-large-change", action="store_true", help="approve a run the blast-radius guard refuses")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)

    p = sub.add_parser("status", help="the last sync runs")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("query", help="run SQL on the published read-only copy of the warehouse (safe during runs)")
    p.add_argument("sql")
    p.add_argument("--json", action="store_true")
    p.add_argument("--max-rows", type=int, default=40)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("publish", help="publish the stakeholder copy now (runs do this after every sync)")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("contract", help="print the raw-data contract (from the dbt sources YAML) as Markdown")
    p.add_argument("--update-readme", action="store_true", help="rewrite the README's contract section")
    p.set_defaults(func=cmd_contract)

    # Its options are python -m sinks.emulators's (relay emulators --help), parsed by cmd_emulators: this keeps
    # the emulators' imports out of every other command.
    p = sub.add_parser("emulators", add_help=False,
                       help="serve the local Customer.io, Cordial and Talon.One emulators (--help: address, faults, limits)")
    p.set_defaults(func=cmd_emulators)

    p = sub.add_parser("dev", help="the Dagster UI and daemon (dagster dev), with emulators running when in emulator mode")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser("run", help="run a Dagster job now, in this process (frequent_path or daily_full)")
    p.add_argument("job", choices=["frequent_path", "daily_full"])
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="sample data -> dbt -> syncs to the emulators -> summary")
    p.add_argument("--customers", type=int, default=int(os.environ.get("RELAY_DEMO_CUSTOMERS", "5000")))
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--regenerate", action="store_true", help="regenerate the sample data even if a warehouse exists")
    p.set_defaults(func=cmd_demo)

    args, rest = parser.parse_known_args(argv)
    if args.command == "emulators":
        args.rest = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
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


if __name__ == "__main__":
    sys.exit(main())
