"""Cordial's contact imports: a CSV file read from its URL, each row applied as a contact POST would be."""

import asyncio
import csv
import io
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx

from .api import ApiError
from .cordial_state import CordialState

MAX_JOB_ERRORS = 100


async def run_import(job: dict[str, Any], url: str, write: Callable[[dict[str, Any]], None],
                     state: CordialState, subscribe: bool, rng: random.Random, step_s: float) -> None:
    """Move `job` through queued -> processing -> complete (or failed), writing each row's contact body with
    `write`, in shuffled order, as the vendor's parallel loading does not preserve order."""
    await asyncio.sleep(step_s)
    job["status"] = "processing"
    await asyncio.sleep(step_s)
    try:
        rows = list(csv.DictReader(io.StringIO(await _fetch(url))))
    except (OSError, httpx.HTTPError, UnicodeDecodeError, csv.Error) as exc:
        problem = f"cannot read the file: {type(exc).__name__}"
        job.update(status="failed", errors=[{"row": None, "message": problem}])
        return
    order = list(range(len(rows)))
    rng.shuffle(order)
    for i in order:
        try:
            write(row_body(rows[i], subscribe, state))
            job["applied"] += 1
        except ApiError as err:
            job["failed"] += 1
            if len(job["errors"]) < MAX_JOB_ERRORS:
                job["errors"].append({"row": i + 1, "fields": err.fields})
    job["status"] = "complete"


def row_body(row: dict[str, str], subscribe: bool, state: CordialState) -> dict[str, Any]:
    """A CSV row as the JSON body a contact POST would carry."""
    body: dict[str, Any] = {}
    email: dict[str, str] = {}
    for column, raw in row.items():
        if raw is None or raw == "":
            continue
        if column == "channels.email.address":
            email["address"] = raw
        elif column == "channels.email.subscribeStatus":
            if subscribe:  # subscribe: false leaves existing statuses untouched
                email["subscribeStatus"] = raw
        elif column in state.list_ids:
            body[column] = {"1": True, "true": True, "0": False, "false": False}.get(raw.lower(), raw)
        else:
            kind = state.attributes.get(column, {}).get("type")
            body[column] = _from_csv(kind, raw)
    if email:
        body["channels"] = {"email": email}
    return body


def _from_csv(kind: str | None, raw: str) -> Any:
    """Typed value of a CSV cell; a value that does not parse is kept as text for validation to report."""
    try:
        if kind == "number":
            number = float(raw)
            return int(number) if number.is_integer() else number
        if kind in ("geo", "array"):
            return json.loads(raw)
    except ValueError:
        pass
    return raw


async def _fetch(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return await asyncio.to_thread(Path(unquote(parsed.path)).read_text, encoding="utf-8")
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.text
