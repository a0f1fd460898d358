"""Answers that do not come from the API: a proxy's HTML error page, a captive portal's login page, a 200
whose body is not JSON or not the shape a write answers with, a redirect. Each destination's real adapter
runs through the engine against its emulator, behind a small proxy that hands out the bad answer. The run
must retry, then fail naming the status and a short redacted excerpt of the body; it must never crash and
never mark a row delivered, and the next run, once the way is clear, must deliver everything."""

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import duckdb
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sinks import destinations
from sinks.declarations import SyncSpec
from sinks.engine import SyncRun
from sinks.http import HttpClient, RetriesExhausted
from support.emulators import CordialConfig, CustomerIOConfig, EmulatorServer, RateLimit, TalonOneConfig, start
from support.warehouse import query

ROWS = 10
COLUMNS = {"customer_key": "varchar", "email": "varchar", "integration_id": "varchar", "orders_count": "bigint",
           "vip_tier": "varchar"}


class Interceptor:
    """A proxy in front of an emulator. Requests pass through, except those to `routes` (every route when
    None) while `answer` is set: they get that answer, as from something standing between us and the API."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.answer: tuple[int, dict, bytes] | None = None
        self.routes: set[str] | None = None
        self.hits = 0
        app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["GET", "POST", "PUT", "DELETE"])])
        app.state.emulator = None  # EmulatorServer serves any Starlette app that has this attribute
        self.server = EmulatorServer(app).start()
        self.url = self.server.url

    async def handle(self, request: Request) -> Response:
        if self.answer and (self.routes is None or f"{request.method} {request.url.path}" in self.routes):
            self.hits += 1
            status, headers, body = self.answer
            return Response(body, status, headers=headers)
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with httpx.AsyncClient(base_url=self.upstream) as client:
            upstream = await client.request(request.method, request.url.path, params=request.query_params,
                                            content=await request.body(), headers=headers)
        return Response(upstream.content, upstream.status_code,
                        headers={k: v for k, v in upstream.headers.items() if k.lower() == "content-type"})


@dataclass
class Destination:
    name: str
    config: Callable[[], object]
    env: Callable[[str], dict[str, str]]
    identifier: str
    route: str  # where rows are delivered
    held: Callable[[dict], int]  # records the destination holds, from its emulator state
    secret: str


DESTINATIONS = {d.name: d for d in (
    Destination(
        "customerio",
        lambda: CustomerIOConfig(site_id="site-7f3a", track_api_key="trk-SECRET-bad-1a2b3c", app_api_key="app-SECRET-bad-4d5e",
                                 port=0, rate_limits={"track": RateLimit(0), "app": RateLimit(0)}),
        lambda url: {"CUSTOMERIO_TRACK_URL": url, "CUSTOMERIO_APP_URL": url, "CUSTOMERIO_SITE_ID": "site-7f3a",
                     "CUSTOMERIO_TRACK_API_KEY": "trk-SECRET-bad-1a2b3c", "CUSTOMERIO_APP_API_KEY": "app-SECRET-bad-4d5e"},
        "customer_key", "POST /api/v2/batch",
        lambda state: sum(1 for p in state["people"].values() if "id" in p), "trk-SECRET-bad-1a2b3c"),
    Destination(
        "cordial",
        lambda: CordialConfig(api_key="cordial-SECRET-bad-6f7a", port=0,
                              rate_limits={"api": RateLimit(0, 60, per_route=True, headers=True)}),
        lambda url: {"CORDIAL_API_URL": url, "CORDIAL_API_KEY": "cordial-SECRET-bad-6f7a",
                     "CORDIAL_RATE_LIMIT_PER_MIN": "6000000", "CORDIAL_IMPORT_MIN_ROWS": "1000000000"},
        "email", "POST /v2/contacts",
        lambda state: len(state["contacts"]), "cordial-SECRET-bad-6f7a"),
    Destination(
        "talon_one",
        lambda: TalonOneConfig(integration_key="talon-SECRET-bad-int-8b9c", management_key="talon-SECRET-bad-mgmt-0d1e",
                               port=0, rate_limits={"integration": RateLimit(0), "management": RateLimit(0, per_route=True)}),
        lambda url: {"TALON_ONE_BASE_URL": url, "TALON_ONE_INTEGRATION_KEY": "talon-SECRET-bad-int-8b9c",
                     "TALON_ONE_MANAGEMENT_KEY": "talon-SECRET-bad-mgmt-0d1e", "TALON_ONE_RATE_LIMIT": "100000",
                     "TALON_ONE_MANAGEMENT_RATE_LIMIT": "1000"},
        "integration_id", "PUT /v2/customer_profiles",
        lambda state: sum(1 for p in state["profiles"].values() if not p.get("hidden")), "talon-SECRET-bad-int-8b9c"),
)}

HTML = {"content-type": "text/html; charset=utf-8"}
PORTAL = ("<!DOCTYPE html><html><head><title>Sign in to Hotel Wi-Fi</title><style>body {{ font: 14px sans-serif }}"
          "</style></head><body><h1>Welcome!</h1><p>Blocked request with key {secret}.</p>"
          "<p>Accept the terms of use to continue.</p><script>document.forms[0].submit()</script></body></html>")
NGINX_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
             b"</center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n")
# name -> (status, headers, body ({secret} is filled in), what the run's message must name)
ANSWERS = {
    "captive_portal_200_html": (200, HTML, PORTAL, ["HTTP 200", "not JSON (text/html)", "Sign in to Hotel Wi-Fi",
                                                    "Blocked request with key ***"]),
    "proxy_502_html": (502, HTML, NGINX_502.decode(), ["HTTP 502", "502 Bad Gateway 502 Bad Gateway nginx/1.25.3"]),
    "200_plain_text": (200, {"content-type": "text/plain"}, "OK", ["HTTP 200", "not JSON (text/plain)", "'OK'"]),
    "200_json_of_the_wrong_shape": (200, {"content-type": "application/json"}, '["accepted"]',
                                    ["HTTP 200", "JSON list where an object was expected", "accepted"]),
    "302_to_a_login_page": (302, {**HTML, "location": "http://portal.example/login?next=api"}, PORTAL,
                            ["HTTP 302 redirect to http://portal.example/login?next=api", "Sign in to Hotel Wi-Fi"]),
}


def spec(d: Destination) -> SyncSpec:
    columns = {c: COLUMNS[c] for c in ("customer_key", d.identifier, "orders_count", "vip_tier")}
    return SyncSpec(name=f"sync_test__{d.name}_people", relation="syncs.people", destination=d.name, object="attributes",
                    primary_key=("customer_key",), identifier=d.identifier, on_exit="clear", schedule="frequent",
                    columns=columns)


@pytest.fixture(params=list(DESTINATIONS))
def dest(request, monkeypatch, warehouse):
    d = DESTINATIONS[request.param]
    emulator = start(d.config())
    proxy = Interceptor(emulator.url)
    for var, value in d.env(proxy.url).items():
        monkeypatch.setenv(var, value)
    # Retries back off for real elsewhere; here they follow each other at once.
    monkeypatch.setattr(HttpClient, "_delay", lambda self, attempt, retry_after: 0.0)
    con = duckdb.connect(str(warehouse))
    con.execute("create schema syncs")
    con.execute("create table syncs.people as select 'c' || lpad(i::varchar, 6, '0') as customer_key, "
                "'person' || i || '@example.com' as email, 't-c' || lpad(i::varchar, 6, '0') as integration_id, "
                "(i % 7)::bigint as orders_count, ['none', 'silver', 'gold'][i % 3 + 1] as vip_tier "
                f"from range({ROWS}) t(i)")
    con.close()
    try:
        yield SimpleNamespace(**vars(d), proxy=proxy, emulator=emulator)
    finally:
        proxy.server.stop()
        emulator.stop()


def held(d) -> int:
    return d.held(httpx.get(f"{d.emulator.url}/_emulator/state").json())


@pytest.mark.parametrize("answer", list(ANSWERS))
def test_a_bad_answer_to_deliveries_fails_the_run_clearly_and_acknowledges_nothing(dest, answer, warehouse):
    status, headers, body, named = ANSWERS[answer]
    dest.proxy.answer = (status, headers, body.format(secret=dest.secret).encode())
    dest.proxy.routes = {dest.route}
    result = SyncRun(spec(dest), destinations.build(dest.name), warehouse).execute()  # returns: no crash

    assert (result.status, result.acked, result.rejected, result.unsent) == ("failed", 0, 0, ROWS)
    assert dest.proxy.hits >= 8, "the bad answer was not retried"
    for text in named:
        assert text in result.message, result.message
    assert dest.secret not in result.message and "<" not in result.message, result.message
    assert query(warehouse, "select status, message from relay.sync_runs") == [("failed", result.message)]
    assert query(warehouse, "select count(*) from relay.sync_state") == [(0,)]
    assert query(warehouse, "select count(*) from relay.sync_rejections") == [(0,)]
    assert held(dest) == 0

    dest.proxy.answer = None  # the way is clear again: everything goes through
    again = SyncRun(spec(dest), destinations.build(dest.name), warehouse).execute()
    assert (again.status, again.acked_add) == ("succeeded", ROWS)
    assert held(dest) == ROWS


def test_a_captive_portal_answering_every_request_stops_the_run_with_its_page_named(dest, warehouse):
    status, headers, body, named = ANSWERS["captive_portal_200_html"]
    dest.proxy.answer = (status, headers, body.format(secret=dest.secret).encode())  # setup requests too
    run = SyncRun(spec(dest), destinations.build(dest.name), warehouse)
    try:
        message = run.execute().message
    except RetriesExhausted as exc:  # met during setup: a RuntimeError, which `relay` reports in one line
        assert isinstance(exc, RuntimeError)
        message = str(exc)
    assert "HTTP 200" in message and "Sign in to Hotel Wi-Fi" in message and dest.secret not in message
    [(run_status, ledger_message)] = query(warehouse, "select status, message from relay.sync_runs")
    assert run_status == "failed" and "Sign in to Hotel Wi-Fi" in ledger_message
    assert query(warehouse, "select count(*) from relay.sync_state") == [(0,)]
    assert held(dest) == 0


# JSON answers of a shape no API documents: whatever an adapter makes of them, no row may be acknowledged.
ODD_JSON = {
    "207_errors_null": (207, '{"errors": null}'),
    "207_blames_an_entry_not_in_the_batch": (207, '{"errors": [{"batch_index": 99, "reason": "invalid"}]}'),
    "200_errors_not_a_list": (200, '{"errors": 5}'),
}


@pytest.mark.parametrize("answer", list(ODD_JSON))
def test_json_of_an_undocumented_shape_acknowledges_nothing(dest, answer, warehouse):
    status, body = ODD_JSON[answer]
    dest.proxy.answer = (status, {"content-type": "application/json"}, body.encode())
    dest.proxy.routes = {dest.route}
    result = SyncRun(spec(dest), destinations.build(dest.name), warehouse).execute()  # returns: no crash
    assert result.acked == 0 and result.status in ("failed", "partial"), (result.status, result.message)
    assert query(warehouse, "select count(*) from relay.sync_state") == [(0,)]
    assert held(dest) == 0
    dest.proxy.answer = None
    again = SyncRun(spec(dest), destinations.build(dest.name), warehouse).execute()
    assert (again.status, again.acked) == ("succeeded", ROWS)
    assert held(dest) == ROWS
