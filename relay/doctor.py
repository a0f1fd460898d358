"""`relay doctor`, and the first step of every job: everything a run needs, checked in seconds and reported
all at once. Settings (every missing or malformed one), the warehouse (there, and not held by another
writer), the sync declarations, and per destination its settings, a cheap authenticated read per
credential and the attribute definitions its syncs need (sinks.destinations.preflight)."""

import asyncio
import os

import duckdb

from relay import config
from relay.config import ConfigError
from sinks import destinations
from sinks.destinations.preflight import Finding, check


def diagnose(specs=None) -> list[Finding]:
    """Every finding, failures first within each subject. `specs`: the syncs to check for (default: all)."""
    findings = _settings()
    findings.append(_warehouse())
    if specs is None:
        try:
            from relay import pipeline

            specs = pipeline.sync_specs()
        except (ConfigError, ValueError, RuntimeError, FileNotFoundError) as exc:
            return [*findings, Finding("syncs", "fail", str(exc))]
    if any(f.subject == "settings" and f.status == "fail" and "RELAY_DESTINATIONS" in f.text for f in findings):
        return findings  # which hosts and credentials apply is unknown
    by_destination: dict[str, list] = {}
    for spec in specs:
        by_destination.setdefault(spec.destination, []).append(spec)
    shared = {f.text for f in findings if f.subject == "settings"}
    findings += asyncio.run(_destinations(by_destination, shared))
    return findings


def _settings() -> list[Finding]:
    problems: list[str] = []
    for read in (config.live, config.customerio_region, *[lambda v=v: config.number(v) for v in config.NUMBERS]):
        try:
            read()
        except ConfigError as exc:
            problems += exc.problems
    if not _live():
        for name in config.EMULATOR_PORTS:
            try:
                config.emulator_port(name)
            except ConfigError as exc:
                problems += [p for p in exc.problems if p not in problems]
    webhook = os.environ.get("RELAY_ALERT_WEBHOOK_URL")
    if webhook and not webhook.startswith(("https://", "http://")):
        problems.append(f"RELAY_ALERT_WEBHOOK_URL is {webhook!r}; expected a URL starting with https://")
    findings = [Finding("settings", "fail", p) for p in problems]
    if os.environ.get("RELAY_FAILPOINT"):
        findings.append(Finding("settings", "warn", "RELAY_FAILPOINT is set: runs will be killed on purpose "
                                                    "(crash testing only)"))
    mode = "live (the vendors' hosts)" if _live() else "emulator (the local emulators)"
    findings.append(Finding("settings", "ok", f"RELAY_DESTINATIONS: {mode}"))
    return findings


def _live() -> bool:
    try:
        return config.live()
    except ConfigError:
        return False


def _warehouse() -> Finding:
    path = config.warehouse_path()
    if not path.exists():
        return Finding("warehouse", "fail", f"{path} does not exist: land the raw data there (or `relay sample-data`), "
                                            f"or point RELAY_WAREHOUSE at it")
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.IOException as exc:
        if "lock" not in str(exc):
            return Finding("warehouse", "fail", f"{path} cannot be opened: {str(exc).splitlines()[0]}")
        return Finding("warehouse", "fail", f"{path} is held by another process, which a run would wait on: "
                                            f"{str(exc).splitlines()[0][:200]}")
    return Finding("warehouse", "ok", f"{path} opens, and no other process holds it")


async def _destinations(by_destination: dict[str, list], shared: set[str]) -> list[Finding]:
    """Per destination: its own settings' problems (`shared`, those every destination reads, are listed once
    under settings), else what it answers (sinks.destinations.preflight)."""
    async def one(name: str, specs) -> list[Finding]:
        try:
            adapter = destinations.build(name)
        except ConfigError as exc:
            own = [p for p in exc.problems if p not in shared]
            return [Finding(name, "fail", p) for p in own] or [
                Finding(name, "fail", "not checked: the settings above are malformed")]
        return await check(adapter, specs)

    found = await asyncio.gather(*(one(name, specs) for name, specs in sorted(by_destination.items())))
    return [finding for findings in found for finding in findings]


def failures(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == "fail"]


def report(findings: list[Finding]) -> str:
    """One line per finding, failures first: what a person reads to fix them all in one go."""
    order = {"fail": 0, "warn": 1, "ok": 2}
    lines = [f"  {f.status.upper():<5} {f.subject:<10} {f.text}" for f in sorted(findings, key=lambda f: order[f.status])]
    return "\n".join(lines)
