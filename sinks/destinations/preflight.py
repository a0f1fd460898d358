"""Before a run sends anything: can it? One cheap authenticated read per credential proves the key and the
way to the destination, and the attribute definitions the syncs need are compared with those defined there
(a type conflict would stop a sync; a missing one the run creates). Reads only, briefly: a wrong key fails
in seconds, not after a dbt build. `relay doctor` and the first step of every job call it."""

import asyncio
import time
from dataclasses import dataclass

import httpx

from relay.config import ConfigError
from sinks.destinations.base import Destination, DestinationAuthError, SetupError
from sinks.http import REDACT, RetriesExhausted, excerpt

TIMEOUT_S = 4.0
# A probe meeting a passing 5xx or dropped connection tries again, briefly: a blip must not fail a whole run.
ATTEMPTS, BACKOFF_S = 4, 0.2


@dataclass(frozen=True)
class Finding:
    """One thing checked: `status` ok, warn (works, with a caveat) or fail (a run would fail)."""

    subject: str
    status: str
    text: str


async def check(adapter: Destination, specs) -> list[Finding]:
    """What `adapter`'s destination says to a run of `specs` (its syncs), every probe at once."""
    try:
        client = adapter.open_client(timeout_s=TIMEOUT_S, max_attempts=ATTEMPTS, backoff_base_s=BACKOFF_S,
                                     backoff_cap_s=BACKOFF_S * 4, max_throttle_wait_s=TIMEOUT_S)
    except RetriesExhausted as exc:  # emulator mode and no emulator listening
        return [Finding(adapter.name, "fail", str(exc))]
    async with client:
        probes = await asyncio.gather(*(_probe(adapter, client, group, request)
                                        for group, request in adapter.probes().items()))
        if any(f.status == "fail" for f in probes):
            return list(probes)
        return [*probes, *await _attributes(adapter, client, specs)]


async def _probe(adapter: Destination, client, group: str, request) -> Finding:
    variables = adapter.CREDENTIAL_VARIABLES[group]
    started = time.monotonic()
    try:
        response = await client.send(request)
    except (RetriesExhausted, httpx.HTTPError) as exc:
        return Finding(adapter.name, "fail", f"no answer to {request.label} at {client.base_url}: {REDACT(str(exc))}")
    took = f"{(time.monotonic() - started) * 1000:.0f} ms"
    if response.status_code in (401, 403):
        return Finding(adapter.name, "fail", f"{variables} refused: HTTP {response.status_code} to {request.label} "
                                             f"at {client.base_url} ({took})")
    if response.status_code >= 400 and response.status_code != 404:
        return Finding(adapter.name, "fail", f"{request.label} answered HTTP {response.status_code}: "
                                             f"{excerpt(response, 200)}")
    problem = adapter.probe_problem(group, response)
    if problem:
        return Finding(adapter.name, "fail", problem)
    return Finding(adapter.name, "ok", f"{variables} accepted ({request.label}, {took})")


async def _attributes(adapter: Destination, client, specs) -> list[Finding]:
    wanted: dict[str, tuple[str, str]] = {}  # attribute -> (type, the sync that needs it)
    try:
        for spec in specs:
            for name, kind in adapter.attribute_types(spec).items():
                wanted.setdefault(name, (kind, spec.name))
    except (SetupError, ConfigError) as exc:
        return [Finding(adapter.name, "fail", str(exc))]
    if not wanted:
        return []
    try:
        defined = await adapter.attribute_definitions(client)
    except (SetupError, DestinationAuthError, RetriesExhausted, httpx.HTTPError) as exc:
        return [Finding(adapter.name, "fail", f"listing attribute definitions: {REDACT(str(exc))}")]
    if defined is None:
        variables = ", ".join(v for g, v in adapter.CREDENTIAL_VARIABLES.items() if g not in adapter.probes())
        return [Finding(adapter.name, "warn", f"{len(wanted)} attribute definitions not checked ({variables} "
                                              f"is not set): rows are refused where one is missing")]
    conflicts = [f"{name} is defined as {defined[name]!r}, but {sync} sends {kind!r}"
                 for name, (kind, sync) in sorted(wanted.items()) if name in defined and defined[name] != kind]
    missing = sorted(name for name in wanted if name not in defined)
    findings = [Finding(adapter.name, "fail", f"attribute {text}: change it there, or the column's type meta")
                for text in conflicts]
    findings.append(Finding(adapter.name, "ok", f"{len(wanted) - len(missing) - len(conflicts)} of {len(wanted)} "
                                                f"attributes defined" + (f"; the next run creates {', '.join(missing)}"
                                                                         if missing else "")))
    return findings
