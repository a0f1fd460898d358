"""Destination harnesses: one class per destination holding its emulator, credentials, sync specs and readers
of what it holds, so that a behavioural test is written once and run against all three (test_sync_engine,
test_crash_recovery, bench/soak.py). Sync models are plain tables in a DuckDB warehouse (no dbt needed)."""

from collections import Counter
from dataclasses import replace
from types import SimpleNamespace

import httpx

import sinks.destinations.customerio as customerio_adapter
import sinks.destinations.talon_one as talon_one_adapter
import vendor_schemas
from sinks import destinations
from sinks.declarations import SyncSpec
from sinks.engine import SyncRun

from .emulators import EMULATOR_CREDENTIALS, CordialConfig, CustomerIOConfig, RateLimit, TalonOneConfig, start
from .warehouse import write_table

TIERS = ("none", "silver", "gold")
# One table shape for every destination; each sync reads the columns its spec declares.
PEOPLE_COLUMNS = {"customer_key": "varchar", "email": "varchar", "integration_id": "varchar",
                  "orders_count": "bigint", "last_order_at": "varchar", "vip_tier": "varchar"}
MEMBER_COLUMNS = {"customer_key": "varchar", "email": "varchar", "integration_id": "varchar", "audience": "varchar"}


def person(i: int) -> dict:
    return {"customer_key": f"c{i:06d}", "email": f"person{i}@example.com", "integration_id": f"t-c{i:06d}",
            "orders_count": i % 7, "last_order_at": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            "vip_tier": TIERS[i % 3]}


def people_rows(n: int) -> list[dict]:
    return [person(i) for i in range(n)]


def member(i: int, audience: str) -> dict:
    return {**{k: person(i)[k] for k in ("customer_key", "email", "integration_id")}, "audience": audience}


def sync_spec(name: str, destination: str, obj: str, identifier: str, columns: list[str], meta=None) -> SyncSpec:
    source = MEMBER_COLUMNS if obj == "membership" else PEOPLE_COLUMNS
    key = ("customer_key", "audience") if obj == "membership" else ("customer_key",)
    return SyncSpec(name=f"sync_test__{name}", relation=f"syncs.{name}", destination=destination, object=obj,
                    primary_key=key, identifier=identifier, on_exit="remove" if obj == "membership" else "clear",
                    schedule="frequent", columns={c: source[c] for c in columns}, column_meta=meta or {})


class Harness:
    """One destination's emulator, credentials, sync specs and readers of what it holds."""

    name: str
    people: SyncSpec
    members: SyncSpec
    audiences: tuple[str, str]
    credential_var: str  # the key every data request carries
    items_route: str  # emulator route that receives people rows, counted per item
    fault_rows: int  # enough rows to meet every injected fault
    small_batch: tuple | None = None  # (module, constant, value): smaller requests, so faults meet more of them
    kill: tuple[int, int, float]  # rows, kill after every this many items, latency slow enough to land mid-sync
    poison: dict  # column values the destination refuses for one row
    poison_reason: str  # part of its reason
    unset: object = None  # what a string attribute set to null reads as there (None: gone)

    def __init__(self, monkeypatch) -> None:
        self.server = start(replace(self.config(), record_requests=True))
        for var, value in self.env().items():
            monkeypatch.setenv(var, value)
        self.secrets = [v for k, v in self.env().items() if "KEY" in k]

    def __enter__(self) -> "Harness":
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()
        if exc[0] is None:  # every request the test made, judged by the vendor's schema
            vendor_schemas.assert_judged({self.name: self.server})

    def sync(self, spec, warehouse, **kwargs):
        return SyncRun(spec, destinations.build(self.name), warehouse, **kwargs).execute()

    def write_people(self, warehouse, rows) -> None:
        write_table(warehouse, "syncs.people", PEOPLE_COLUMNS, rows)

    def write_members(self, warehouse, rows) -> None:
        write_table(warehouse, "syncs.members", MEMBER_COLUMNS, rows)

    def state(self) -> dict:
        return httpx.get(f"{self.server.url}/_emulator/state").json()

    def stats(self) -> dict:
        return httpx.get(f"{self.server.url}/_emulator/stats").json()

    def faults(self, **settings) -> None:
        httpx.post(f"{self.server.url}/_emulator/faults", json=settings).raise_for_status()

    def requests(self) -> int:
        return self.stats()["requests"]

    def items(self) -> int:
        return self.stats()["items"].get(self.items_route, 0)

    def expected(self, rows) -> dict[str, dict]:
        """What the destination should hold for these model rows."""
        attrs = self.people.attribute_columns
        return {r[self.people.identifier]: {c: r[c] for c in attrs if r[c] is not None} for r in rows}

    def id_of(self, row) -> str:
        return row[self.people.identifier]

    # Per destination: config(), env(), held(), held_members(), objects(), exited(row).


class CustomerIOHarness(Harness):
    name = "customerio"
    people = sync_spec("people", "customerio", "attributes", "customer_key",
                  ["customer_key", "email", "orders_count", "last_order_at", "vip_tier"])
    members = sync_spec("members", "customerio", "membership", "customer_key", ["customer_key", "audience"])
    audiences = ("wh_cart_0_4h", "wh_vip")
    credential_var = "CUSTOMERIO_TRACK_API_KEY"
    items_route = "POST /api/v2/batch"
    fault_rows = 3000
    small_batch = (customerio_adapter, "MAX_BATCH_BYTES", 8 * 1024)
    kill = (20_000, 3000, 40)  # ~4000 rows a request
    poison = {"vip_tier": "x" * 1500}
    poison_reason = "1000 bytes"

    def config(self):
        return CustomerIOConfig(site_id="site-7f3a", track_api_key="trk-SECRET-9c1d2e3f4a5b",
                                app_api_key="app-SECRET-77aa88bb99cc", port=0,
                                rate_limits={"track": RateLimit(0), "app": RateLimit(0)})

    def env(self):
        return {"CUSTOMERIO_TRACK_URL": self.server.url, "CUSTOMERIO_APP_URL": self.server.url,
                "CUSTOMERIO_SITE_ID": "site-7f3a", "CUSTOMERIO_TRACK_API_KEY": "trk-SECRET-9c1d2e3f4a5b",
                "CUSTOMERIO_APP_API_KEY": "app-SECRET-77aa88bb99cc", "CUSTOMERIO_RATE_LIMIT": "100000"}

    def held(self):
        # Customer.io keeps `email` as an identifier of the person, not an attribute.
        return {p["id"]: {**({"email": p["email"]} if "email" in p else {}), **p["attributes"]}
                for p in self.state()["people"].values() if "id" in p}

    def held_members(self):
        state = self.state()
        ids = {cio_id: p.get("id") for cio_id, p in state["people"].items()}
        return {s["name"]: {ids[m] for m in s["members"]} for s in state["segments"].values()}

    def objects(self):
        return Counter(s["name"] for s in self.state()["segments"].values())

    def exited(self, row):
        return {"email": row["email"]}  # every attribute cleared; the identifier stays


class CordialHarness(Harness):
    name = "cordial"
    people = sync_spec("people", "cordial", "attributes", "email",
                  ["customer_key", "email", "orders_count", "last_order_at", "vip_tier"],
                  meta={"last_order_at": {"cordial_type": "date"}})
    members = sync_spec("members", "cordial", "membership", "email", ["customer_key", "email", "audience"])
    audiences = ("wh | cart | 0-4h | no purchase", "wh | vip | gold")
    credential_var = "CORDIAL_API_KEY"
    items_route = "POST /v2/contacts"
    fault_rows = 80  # one request per contact
    kill = (1500, 300, 5)
    poison = {"last_order_at": "yesterday"}
    poison_reason = "must be a date"

    def config(self):
        return CordialConfig(api_key="cordial-SECRET-5e6f7a8b", port=0,
                             rate_limits={"api": RateLimit(0, 60, per_route=True, headers=True)})

    def env(self):
        # The shared suite drives the per-contact API; bulk imports have tests of their own below.
        return {"CORDIAL_API_URL": self.server.url, "CORDIAL_API_KEY": "cordial-SECRET-5e6f7a8b",
                "CORDIAL_RATE_LIMIT_PER_MIN": "6000000", "CORDIAL_IMPORT_MIN_ROWS": "1000000000"}

    def held(self):
        return {c["email"]: c["attributes"] for c in self.state()["contacts"].values()}

    def held_members(self):
        state = self.state()
        return {lst["name"]: {state["contacts"][cid]["email"] for cid in lst["members"]}
                for lst in state["lists"].values()}

    def objects(self):
        state = self.state()
        return Counter([lst["name"] for lst in state["lists"].values()] + list(state["attributes"]))

    def exited(self, row):
        return {}  # the contact stays, every synced attribute cleared


class TalonOneHarness(Harness):
    name = "talon_one"
    people = sync_spec("people", "talon_one", "attributes", "integration_id",
                  ["customer_key", "integration_id", "orders_count", "last_order_at", "vip_tier"],
                  meta={"last_order_at": {"talon_one_type": "time", "exit_value": "1970-01-01T00:00:00Z"},
                        "orders_count": {"exit_value": 0}})
    members = sync_spec("members", "talon_one", "membership", "integration_id", ["customer_key", "integration_id", "audience"])
    audiences = ("wh_cart_0_4h", "wh_vip_gold")
    credential_var = "TALON_ONE_INTEGRATION_KEY"
    items_route = "PUT /v2/customer_profiles"
    fault_rows = 3000
    small_batch = (talon_one_adapter, "MAX_ITEMS", 50)
    kill = (6000, 1500, 300)
    poison = {"last_order_at": "yesterday"}
    poison_reason = "must be of type time"
    unset = ""  # Talon.One refuses null: strings are emptied instead

    def config(self):
        return TalonOneConfig(integration_key="talon-SECRET-int-1a2b3c", management_key="talon-SECRET-mgmt-4d5e6f",
                              port=0, rate_limits={"integration": RateLimit(0), "management": RateLimit(0, per_route=True)})

    def env(self):
        return {"TALON_ONE_BASE_URL": self.server.url, "TALON_ONE_INTEGRATION_KEY": "talon-SECRET-int-1a2b3c",
                "TALON_ONE_MANAGEMENT_KEY": "talon-SECRET-mgmt-4d5e6f", "TALON_ONE_RATE_LIMIT": "100000",
                "TALON_ONE_MANAGEMENT_RATE_LIMIT": "1000"}

    def held(self):
        return {i: p["attributes"] for i, p in self.state()["profiles"].items() if not p.get("hidden")}

    def held_members(self):
        return {a["name"]: set(a["members"]) for a in self.state()["audiences"].values()}

    def objects(self):
        state = self.state()
        return Counter([a["name"] for a in state["audiences"].values()]
                       + list(state["attributes"].get("CustomerProfile", {})))

    def exited(self, row):
        # Numbers and times cannot be emptied at Talon.One: they take their declared exit values; the string is.
        return {"orders_count": 0, "last_order_at": "1970-01-01T00:00:00Z", "vip_tier": ""}


HARNESSES = {h.name: h for h in (CustomerIOHarness, CordialHarness, TalonOneHarness)}


def credentials() -> dict[str, str]:
    """The harnesses' credentials, as an emulator process reads them from its environment."""
    env: dict[str, str] = {}
    for cls in HARNESSES.values():
        env.update(cls.env(SimpleNamespace(server=SimpleNamespace(url=""))))
    return {k: v for k, v in env.items() if k in EMULATOR_CREDENTIALS}


def attach(name: str, url: str) -> Harness:
    """The harness of destination `name`, reading an emulator at `url` started elsewhere (EmulatorProcess)."""
    cls = HARNESSES[name]
    harness = cls.__new__(cls)
    harness.server = SimpleNamespace(url=url)
    harness.secrets = [v for k, v in harness.env().items() if "KEY" in k]
    # A large state takes a while to serialise: read it without the 5 s default timeout.
    harness.state = lambda: admin(harness, "state")
    harness.stats = lambda: admin(harness, "stats")
    return harness


def admin(h: Harness, path: str, body: dict | None = None) -> dict:
    """An emulator admin call: GET without a body, POST with one (reset takes {})."""
    url = f"{h.server.url}/_emulator/{path}"
    response = httpx.post(url, json=body, timeout=120) if body is not None else httpx.get(url, timeout=120)
    response.raise_for_status()
    return response.json()
