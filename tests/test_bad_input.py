"""Bad raw input: every case ends in a clear outcome, never a corrupted state or a silent drop.

Either a dbt test fails, blocks everything downstream of staging (so no sync model is rebuilt and no sync
runs) and names the table, the column and the rows, or staging cleans or sets the row aside with the
reason written down (a model description, a warning test listing the rows), or the destination refuses
the row and the engine records why in relay.sync_rejections.

| case                                              | outcome                                                        |
|---------------------------------------------------|----------------------------------------------------------------|
| a key delivered twice (Fivetran re-sync)          | newest _fivetran_synced wins (then updated_at); warning lists it|
| ... newest version soft-deleted / older one       | judged on the newest version: gone / present                   |
| two versions that tie on _fivetran_synced         | unique test fails naming the key (never picks one)              |
| null primary key                                  | not_null test fails; the stored failure is the row              |
| unreadable timestamp, boolean, id or amount (text) | assert_raw_timestamps_parse fails: table, column, key, value    |
| timestamp text with an offset or tabs/line breaks | parsed, converted to UTC                                       |
| future-dated order / checkout                     | left out of staging (the clock does not move); warning lists it |
| negative, absurd, NaN amount                      | assert_raw_amounts_are_plausible fails: table, column, key, why |
| control characters in names and emails           | removed (names: a space); the email is kept, not nulled         |
| U+FFFD (an undecodable byte, as loaders land it)  | kept verbatim                                                  |
| non-UTF-8 bytes in a landed file                  | the build fails naming the file ("not utf-8 encoded")          |
| 10 KB name                                        | kept whole; Customer.io refuses that person (recorded), the rest delivered; Cordial takes it verbatim |
| plus-addressed email                              | kept as typed, a distinct address from the one without "+tag"   |
| Unicode email, composed vs decomposed, any case   | one NFC lower-case address: the guest order joins the account   |
| SQL- or JSON-looking names                        | arrive at the destinations verbatim, as data                    |
| a Segment user id that is not a Shopify id        | a Segment user identifier of its own: the person's events join them |
| empty raw tables                                  | everything builds, empty; nothing to send                      |

Covered elsewhere (not repeated here): a raw table missing a required column names table and column
(test_contract.py::test_missing_required_column_names_table_and_column); a sync model with a duplicate
key refuses the run (test_sync_engine.py::test_duplicate_keys_refuse_the_run); an emptied table on top of
synced state is held by the blast-radius guard (test_sync_engine.py::test_blast_radius_guard_refuses_until_approved);
a failing dbt test stops every sync in the Dagster job (test_pipeline.py::test_a_failing_dbt_test_blocks_every_sync).

Cost: the sample generator runs once (300 customers); one dbt build carries every case that must not
fail the build (then three syncs to the emulators), one build carries every case that must, one builds
empty tables, one tiny build reads a non-UTF-8 file. Each is built once per session, by whichever xdist
worker gets to it first, into a directory the other reads (support/shared_builds.py); the tests only read.
"""

import json
import re
import shutil
import unicodedata
from pathlib import Path

import duckdb
import pytest

from support.dbt import create_contract_tables, run_dbt
from support.emulators import EMULATOR_CREDENTIALS, serve_emulators, served_env
from support.raw_rows import customer, insert
from support.shared_builds import artifact, built_within, shared
from relay import sample_data

pytestmark = pytest.mark.slow

SYNCS = ("sync_customerio__people", "sync_cordial__contacts", "sync_talon_one__profiles")
INJECTION_FIRST = "'); drop table x; --"
INJECTION_LAST = '{"a":1}'
LONG_NAME = "L" * 10_240
UNICODE_ACCOUNT_EMAIL = unicodedata.normalize("NFD", " Zoë.Ünicode@Exämple.COM ")  # decomposed, padded
UNICODE_GUEST_EMAIL = unicodedata.normalize("NFC", "ZOË.ÜNICODE@EXÄMPLE.COM")  # composed, capitals
UNICODE_EMAIL = unicodedata.normalize("NFC", "zoë.ünicode@exämple.com")
OWN_USER_ID = "usr_7f3a9c"  # a Segment user id that is not a Shopify customer id
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# ------------------------------------------------------------------------------------------- building
# Each artifact is built once per session (support/shared_builds.py).
@artifact("raw_sample", "(built for the others)")
def build_raw_sample(directory: Path, factory) -> None:
    """300 generated customers (raw tables only), copied by each build below."""
    sample_data.generate(directory / "warehouse.duckdb", customers=300, seed=11)


def raw_sample_for(directory: Path, factory) -> Path:
    """From inside a build: the raw sample (built first if needed), copied into `directory`."""
    return copy_of(built_within(factory, "raw_sample") / "warehouse.duckdb", directory)


def copy_of(raw_sample: Path, directory: Path) -> Path:
    warehouse = directory / "data" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    shutil.copyfile(raw_sample, warehouse)
    return warehouse


def order(id_, customer_id, created_at, *, synced=None, total=40.0, email=None, **extra) -> dict:
    return {"id": id_, "name": f"#{id_}", "customer_id": customer_id, "email": email, "created_at": created_at,
            "updated_at": created_at, "financial_status": "paid", "currency": "USD", "total_price": total,
            "subtotal_price": total, "total_line_items_price": total, "source_name": "web", "test": False,
            "_fivetran_synced": synced or created_at, "_fivetran_deleted": False, **extra}


def land_corpus(warehouse: Path) -> None:
    """Every case that must not fail the build, on top of the sample."""
    with duckdb.connect(str(warehouse)) as con:
        # Timestamps landed as text (so they can carry offsets and stray whitespace).
        con.execute("alter table shopify.customer alter updated_at type varchar")
        insert(con, "shopify.customer", [
            # A re-sync delivered customer 900001 twice: the newer load wins.
            customer(900001, "resync.old@example.com", "Old", synced="2026-10-01 00:00:00", updated="2026-09-30 00:00:00"),
            customer(900001, "resync.new@example.com", "New", synced="2026-10-20 00:00:00", updated="2026-10-19 00:00:00"),
            # Deleted in its newest version: gone (the older, undeleted copy does not come back) ...
            customer(900002, "deleted.later@example.com", "Gone", synced="2026-10-01 00:00:00"),
            customer(900002, "deleted.later@example.com", "Gone", synced="2026-10-20 00:00:00", deleted=True),
            # ... and restored in its newest version: present.
            customer(900003, "restored@example.com", "Back", synced="2026-10-01 00:00:00", deleted=True),
            customer(900003, "restored@example.com", "Back", synced="2026-10-20 00:00:00"),
            # A lapsed customer whose only other order is dated next year (see orders).
            customer(900010, "future.buyer@example.com", "Futura"),
            # Control characters; an email padded with a tab and a line break; a zero-width space inside one.
            customer(900020, "\tctrl.case@example.com\n", "Zoë\x00\x07", "O\nBrien\t"),
            customer(900021, "zw\u200b.case@example.com", "Zed"),
            # What a loader lands for a byte it could not decode: U+FFFD, kept as it is.
            customer(900022, "replacement@example.com", "Ren\ufffde"),
            # A 10 KB name.
            customer(900030, "long.name@example.com", LONG_NAME),
            # Plus-addressing: two addresses, two people.
            customer(900040, "Jane+VIP@Example.com", "Jane", "Plus"),
            customer(900041, "jane@example.com", "Jane", "Plain"),
            # Unicode, decomposed and padded on the account; composed and in capitals on a guest order.
            customer(900042, UNICODE_ACCOUNT_EMAIL, unicodedata.normalize("NFD", "Zoë"), "Ünicode"),
            # Names that look like SQL and JSON are data.
            customer(900050, "injection@example.com", INJECTION_FIRST, INJECTION_LAST),
            # Text timestamps: an offset, ISO "Z", tabs and a line break around it.
            customer(900060, "tz.offset@example.com", "Tz", updated="2026-10-15 12:00:00+02:00"),
            customer(900061, "tz.zulu@example.com", "Tz", updated="2026-10-15T12:00:00Z"),
            customer(900062, "tz.padded@example.com", "Tz", updated="\t2026-10-15 12:00:00\n"),
            # A Segment install that identifies people by its own ids, not Shopify's (see segment rows).
            customer(900070, "own.ids@example.com", "Own"),
        ])
        insert(con, "segment.identifies", [
            {"id": "own-ids-identify", "anonymous_id": "anon-own-ids", "user_id": OWN_USER_ID,
             "email": "own.ids@example.com", "timestamp": "2026-10-18 09:00:00", "received_at": "2026-10-18 09:00:01"},
        ])
        insert(con, "segment.tracks", [
            {"id": "own-ids-track", "user_id": OWN_USER_ID, "event": "Product Viewed", "event_text": "Product Viewed",
             "timestamp": "2026-10-18 09:05:00", "received_at": "2026-10-18 09:05:01", "sent_at": "2026-10-18 09:05:00"},
        ])
        insert(con, 'shopify."order"', [
            # The same order twice: refunded in the newer load.
            order(990001, 900001, "2026-09-01 10:00:00", synced="2026-09-01 10:05:00", total=50.0),
            order(990001, 900001, "2026-09-01 10:00:00", synced="2026-10-20 00:00:00", total=50.0,
                  financial_status="refunded", updated_at="2026-10-19 00:00:00"),
            # Customer 900010: a real order in April, and one stamped a year ahead of when it was loaded.
            order(990009, 900010, "2026-04-01 10:00:00"),
            order(990010, 900010, "2027-10-20 10:00:00", synced="2026-10-20 10:05:00"),
            # A guest order typed with the Unicode address, composed and in capitals.
            order(990042, None, "2026-10-10 10:00:00", email=UNICODE_GUEST_EMAIL),
        ])
        insert(con, "shopify.abandoned_checkout", [
            {"id": 3990010, "token": "future-token", "customer_id": 900010, "email": "future.buyer@example.com",
             "created_at": "2027-10-21 10:00:00", "updated_at": "2027-10-21 10:00:00", "total_price": 30.0,
             "abandoned_checkout_url": "https://shop.example.com/recover/future", "_fivetran_synced": "2026-10-21 10:05:00",
             "_fivetran_deleted": False},
        ])


def sync_to_emulators(warehouse: Path, directory: Path) -> None:
    """The people/contact/profile syncs to fresh emulators; results and what each emulator holds as JSON."""
    from sinks import destinations
    from sinks.declarations import load_specs
    from sinks.engine import SyncRun

    specs = {s.name: s for s in load_specs(warehouse.parent / "dbt" / "target" / "manifest.json")}
    with serve_emulators() as servers:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("RELAY_DATA_DIR", str(warehouse.parent))
            env.setenv("RELAY_DESTINATIONS", "emulator")
            for var in EMULATOR_CREDENTIALS:
                env.delenv(var, raising=False)
            for var, value in served_env(servers).items():
                env.setenv(var, value)
            results = {name: SyncRun(specs[name], destinations.build(specs[name].destination), warehouse).execute().as_dict()
                       for name in SYNCS}
            # The next run changes nothing but retries what Customer.io refused.
            spec = specs["sync_customerio__people"]
            results["rerun of sync_customerio__people"] = SyncRun(spec, destinations.build(spec.destination), warehouse).execute().as_dict()
        (directory / "syncs.json").write_text(json.dumps(results, default=str))
        (directory / "emulators.json").write_text(json.dumps({n: s.emulator.state.to_json() for n, s in servers.items()}))


@artifact("corpus", "corpus", priority=20)
def build_corpus(directory: Path, factory) -> None:
    warehouse = raw_sample_for(directory, factory)
    land_corpus(warehouse)
    result = run_dbt(warehouse, "build", "--exclude", "resource_type:unit_test")  # raises with dbt's output if anything fails
    (directory / "dbt_stdout.txt").write_text(ANSI.sub("", result.stdout))
    sync_to_emulators(warehouse, directory)


@pytest.fixture(scope="module")
def corpus(request):
    """The sample plus every case that must not fail the build: built, then synced to the emulators."""
    return Built(shared(request, "corpus"))


class Built:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.warehouse = directory / "data" / "warehouse.duckdb"
        stdout = directory / "dbt_stdout.txt"
        self.stdout = stdout.read_text() if stdout.exists() else ""

    def query(self, sql: str, params=()) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql, list(params)).fetchall()

    def scalar(self, sql: str, params=()):
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def json(self, name: str) -> dict:
        return json.loads((self.directory / name).read_text())

    def key_of(self, customer_id: int) -> str:
        return self.scalar("select customer_key from intermediate.int_identity_records_resolved "
                           "where record_type = 'shopify_customer' and record_id = ?", [str(customer_id)])

    def audit(self, test_name: str) -> list[tuple]:
        return self.query(f'select * from dbt_test__audit."{test_name}"')

    def customerio_person(self, customer_id: int) -> dict:
        key = self.key_of(customer_id)
        people = self.json("emulators.json")["customerio"]["people"]
        return next(p for p in people.values() if p.get("id") == key)

    def cordial_contact(self, email: str) -> dict:
        return next(c for c in self.json("emulators.json")["cordial"]["contacts"].values() if c["email"] == email)


# ------------------------------------------------------------------------------ cases that must not fail
def test_the_corpus_builds_and_warns_about_what_staging_set_aside(corpus):
    assert "ERROR=0" in corpus.stdout
    assert "Warning in test assert_no_future_dated_activity" in corpus.stdout
    assert "Warning in test assert_no_superseded_raw_versions" in corpus.stdout
    assert 'select * from "warehouse"."dbt_test__audit"."assert_no_future_dated_activity"' in corpus.stdout


def test_a_key_delivered_twice_keeps_the_newest_load(corpus):
    rows = corpus.query("select first_name, email from staging.stg_shopify__customers where customer_id = 900001")
    assert rows == [("New", "resync.new@example.com")]
    assert corpus.query("select financial_status from staging.stg_shopify__orders where order_id = 990001") == [("refunded",)]
    listed = {(t, k): n for t, k, n, _ in corpus.audit("assert_no_superseded_raw_versions")}
    assert listed[("shopify.customer", "900001")] == 2 and listed[("shopify.order", "990001")] == 2


@pytest.mark.parametrize("customer_id, present", [(900002, False), (900003, True)])
def test_a_soft_delete_is_judged_on_the_newest_version(corpus, customer_id, present):
    count = corpus.scalar("select count(*) from staging.stg_shopify__customers where customer_id = ?", [customer_id])
    assert count == int(present)


def test_a_future_dated_order_neither_moves_the_clock_nor_makes_its_customer_recent(corpus):
    assert corpus.scalar("select count(*) from staging.stg_shopify__orders where order_id = 990010") == 0
    assert corpus.scalar("select count(*) from staging.stg_shopify__abandoned_checkouts where checkout_id = 3990010") == 0
    # The sample's activity ends at its as-of (2026-11-01); the order of 2027 does not carry the clock along.
    assert corpus.scalar("select as_of from intermediate.int_as_of") <= sample_data.DEFAULT_AS_OF
    key = corpus.key_of(900010)
    last_order, recent = corpus.query("""
        select lifecycle.most_recent_order_timestamp, segments.is_recent_purchaser
        from marts.customer_lifecycle as lifecycle
        inner join marts.customer_segments as segments using (customer_key)
        where customer_key = ?
    """, [key])[0]
    assert str(last_order) == "2026-04-01 10:00:00" and recent is False
    listed = {(t, k) for t, k, _, _ in corpus.audit("assert_no_future_dated_activity")}
    assert listed == {("shopify.order", "990010"), ("shopify.abandoned_checkout", "3990010")}


@pytest.mark.parametrize("customer_id, updated_at", [
    (900060, "2026-10-15 10:00:00"),  # +02:00 converted to UTC, not dropped
    (900061, "2026-10-15 12:00:00"),  # ISO 8601 with Z
    (900062, "2026-10-15 12:00:00"),  # tab and line break around it
])
def test_timestamps_landed_as_text_parse_to_utc(corpus, customer_id, updated_at):
    value = corpus.scalar("select cast(updated_at as varchar) from staging.stg_shopify__customers where customer_id = ?",
                          [customer_id])
    assert value == updated_at


@pytest.mark.parametrize("customer_id, first_name, last_name, email", [
    (900020, "Zoë", "O Brien", "ctrl.case@example.com"),       # control characters out; email no longer nulled
    (900021, "Zed", None, "zw.case@example.com"),               # zero-width space out of the address
    (900022, "Ren\ufffde", None, "replacement@example.com"),    # U+FFFD is a character like any other
    (900042, "Zoë", "Ünicode", UNICODE_EMAIL),                  # NFC, lower-case
    (900050, INJECTION_FIRST, INJECTION_LAST, "injection@example.com"),  # verbatim
])
def test_staging_cleans_text_without_losing_it(corpus, customer_id, first_name, last_name, email):
    rows = corpus.query("select first_name, last_name, email from staging.stg_shopify__customers where customer_id = ?",
                        [customer_id])
    assert rows == [(first_name, last_name, email)]


def test_a_segment_user_id_that_is_not_a_shopify_id_identifies_its_person(corpus):
    """Segment installs that send their own user ids (not Shopify's numeric ones) must neither fail the build nor
    lose the person's events: the id is a Segment user identifier, linked to the account by the identify's email."""
    key = corpus.key_of(900070)
    assert key is not None
    assert corpus.query("select user_identifier, customer_key from intermediate.int_events_attributed "
                        "where event_id = 'own-ids-track'") == [(f"segment_user:{OWN_USER_ID}", key)]


def test_plus_addressing_is_a_distinct_address_and_person(corpus):
    plus, plain = corpus.key_of(900040), corpus.key_of(900041)
    assert plus != plain
    emails = dict(corpus.query("select customer_key, email from marts.customers where customer_key in (?, ?)", [plus, plain]))
    assert emails == {plus: "jane+vip@example.com", plain: "jane@example.com"}


def test_a_unicode_email_in_another_form_and_case_is_one_person(corpus):
    guest = corpus.scalar("select customer_key from intermediate.int_identity_records_resolved "
                          "where record_type = 'shopify_order' and record_id = '990042'")
    assert guest == corpus.key_of(900042)
    assert corpus.scalar("select email from staging.stg_shopify__orders where order_id = 990042") == UNICODE_EMAIL


def test_every_sync_ran_and_only_the_oversized_row_was_refused(corpus):
    results = {name: result for name, result in corpus.json("syncs.json").items() if name in SYNCS}
    assert {n: r["status"] for n, r in results.items()} == {
        "sync_customerio__people": "partial", "sync_cordial__contacts": "succeeded", "sync_talon_one__profiles": "succeeded"}
    cio = results["sync_customerio__people"]
    assert (cio["rejected"], cio["unsent"], cio["acked_add"]) == (1, 0, cio["planned_add"] - 1)
    rejections = corpus.query("select distinct record_key, reason from relay.sync_rejections")
    assert len(rejections) == 1
    (key, reason), = rejections
    assert key == corpus.key_of(900030) and "first_name" in reason and "1000 bytes" in reason
    # The next run retries the refused row, and only it; it is refused again (its status: the next test).
    rerun = corpus.json("syncs.json")["rerun of sync_customerio__people"]
    assert (rerun["planned_add"], rerun["acked_add"], rerun["rejected"], rerun["unsent"]) == (1, 0, 1, 0)
    # Cordial has no such limit: the name arrives whole.
    assert corpus.cordial_contact("long.name@example.com")["attributes"]["first_name"] == LONG_NAME


def test_a_row_refused_again_does_not_fail_the_run(corpus):
    assert corpus.json("syncs.json")["rerun of sync_customerio__people"]["status"] == "partial"


@pytest.mark.parametrize("customer_id, first_name, last_name", [
    (900050, INJECTION_FIRST, INJECTION_LAST),
    (900020, "Zoë", "O Brien"),
    (900022, "Ren\ufffde", None),
    (900042, "Zoë", "Ünicode"),
])
def test_names_arrive_at_the_destinations_as_data(corpus, customer_id, first_name, last_name):
    person = corpus.customerio_person(customer_id)
    assert person["attributes"].get("first_name") == first_name
    assert person["attributes"].get("last_name") == last_name
    contact = corpus.cordial_contact(person["email"])
    assert contact["attributes"].get("first_name") == first_name
    assert contact["attributes"].get("last_name") == last_name
    # ... and the ledger holds what was sent, unchanged.
    payload = json.loads(corpus.scalar("select payload from relay.sync_state where sync_name = 'sync_customerio__people' "
                                       "and record_key = ?", [corpus.key_of(customer_id)]))
    assert (payload["first_name"], payload["last_name"]) == (first_name, last_name)


def test_unicode_and_plus_addresses_reach_the_destinations_as_one_contact_each(corpus):
    assert corpus.customerio_person(900042)["email"] == UNICODE_EMAIL
    assert corpus.cordial_contact(UNICODE_EMAIL)
    assert corpus.cordial_contact("jane+vip@example.com") != corpus.cordial_contact("jane@example.com")


# ----------------------------------------------------------------------------------- cases that must fail
@artifact("blocked", "blocked", priority=10)
def build_blocked(directory: Path, factory) -> None:
    warehouse = raw_sample_for(directory, factory)
    with duckdb.connect(str(warehouse)) as con:
        con.execute('alter table shopify."order" alter created_at type varchar')
        con.execute('alter table shopify."order" alter cancelled_at type varchar')
        insert(con, 'shopify."order"', [
            order(None, None, "2026-10-10 10:00:00", synced="2026-10-10 10:05:00", name="#NULL-ID"),
            order(990200, None, "yesterday", synced="2026-10-10 10:05:00", updated_at=None),
            order(990201, None, "2026-10-10 10:00:00", synced="2026-10-10 10:05:00", cancelled_at="31/12/2026"),
            order(990300, None, "2026-10-10 10:00:00", total=-50.0),
        ])
        insert(con, "shopify.order_line", [{"id": 9903011, "order_id": 990201, "quantity": 1, "price": 1e12,
                                            "_fivetran_synced": "2026-10-10 10:05:00"}])
        insert(con, 'shopify."transaction"', [{"id": 9903021, "order_id": 990201, "amount": float("nan"), "kind": "sale",
                                               "status": "success", "created_at": "2026-10-10 10:00:00",
                                               "_fivetran_synced": "2026-10-10 10:05:00"}])
        # Two versions of one customer that cannot be ordered: same load time, same update time.
        insert(con, "shopify.customer", [customer(900100, "a.version@example.com", synced="2026-10-02 00:00:00"),
                                         customer(900100, "b.version@example.com", synced="2026-10-02 00:00:00")])
    result = run_dbt(warehouse, "build", check=False)
    (directory / "returncode").write_text(str(result.returncode))
    (directory / "dbt_stdout.txt").write_text(ANSI.sub("", result.stdout))
    for name in ("run_results.json", "manifest.json"):
        shutil.copyfile(warehouse.parent / "dbt" / "target" / name, directory / name)


@pytest.fixture(scope="module")
def blocked(request):
    """The sample plus every case that must fail the build, in one dbt build."""
    return Built(shared(request, "blocked"))


def test_the_bad_rows_fail_the_build_and_nothing_downstream_of_staging_is_built(blocked):
    assert (blocked.directory / "returncode").read_text() == "1"
    statuses = {r["unique_id"]: r["status"] for r in blocked.json("run_results.json")["results"]}
    parents = blocked.json("manifest.json")["parent_map"]

    def reads_staging(node: str) -> bool:
        return any(p.startswith("model.relay.stg_") or (p.startswith("model.") and reads_staging(p)) for p in parents[node])

    downstream = {node for node in statuses if node.startswith("model.") and reads_staging(node)}
    assert {f"model.relay.sync_{d}" for d in ("customerio__people", "cordial__contacts", "talon_one__profiles")} <= downstream
    assert {statuses[node] for node in downstream} == {"skipped"}
    assert {s for n, s in statuses.items() if n.startswith("model.relay.stg_")} == {"success"}
    built = {t for (t,) in blocked.query("select table_schema || '.' || table_name from information_schema.tables "
                                         "where table_schema in ('intermediate', 'marts', 'syncs')")}
    # The catalog of segments reads no data; the scope's record of what the loaders wrote reads raw only.
    assert built == {"marts.segment_definitions", "intermediate.int_scope_watermark", "intermediate.int_scope_changed_records"}


@pytest.mark.parametrize("test_name, failing_rows", [
    # A null key: the stored failure is the row itself (its name identifies it).
    ("not_null_stg_shopify__orders_order_id", lambda rows: [r[1] for r in rows] == ["#NULL-ID"]),
    # Two versions that tie: the key, and how many rows carry it.
    ("unique_stg_shopify__customers_customer_id", lambda rows: rows == [(900100, 2)]),
    # An unreadable required timestamp also leaves the column null.
    ("not_null_stg_shopify__orders_created_at", lambda rows: [r[0] for r in rows] == [990200]),
    # Raw table, column, key, the value as landed.
    ("assert_raw_timestamps_parse", lambda rows: sorted(rows) == [
        ("shopify.order", "cancelled_at", "990201", "31/12/2026"),
        ("shopify.order", "created_at", "990200", "yesterday")]),
    # Raw table, column, key, the value as landed, the problem.
    ("assert_raw_amounts_are_plausible", lambda rows: sorted(rows) == [
        ("shopify.order", "subtotal_price", "990300", "-50.0", "negative"),
        ("shopify.order", "total_line_items_price", "990300", "-50.0", "negative"),
        ("shopify.order", "total_price", "990300", "-50.0", "negative"),
        ("shopify.order_line", "price", "9903011", "1000000000000.0", "above the plausible maximum 1000000000"),
        ("shopify.transaction", "amount", "9903021", "nan", "not a finite number")]),
])
def test_each_failure_names_table_column_and_rows(blocked, test_name, failing_rows):
    # dbt's summary names the test (model and column for generic tests) and where its rows are kept ...
    section = blocked.stdout.split(f"Failure in test {test_name} ", 1)[1].split("\n\n\n", 1)[0]
    assert re.search(r"Got \d+ results?, configured to fail", section)
    assert f'select * from "warehouse"."dbt_test__audit"."{test_name}"' in section
    # ... and the stored failures are exactly the bad rows.
    assert failing_rows(blocked.audit(test_name)), blocked.audit(test_name)


def test_non_utf8_bytes_in_a_landed_file_fail_the_build_naming_the_file(tmp_path):
    # A warehouse table cannot hold them: DuckDB refuses invalid UTF-8 at the loader.
    with duckdb.connect() as con, pytest.raises(duckdb.Error, match="UTF-8"):
        con.execute("select ?", [b"Ren\xe9e".decode("utf-8", "surrogateescape")])
    # A file landed by another tool can: reading it stops the build and says which file and why.
    warehouse, landing = tmp_path / "data" / "warehouse.duckdb", tmp_path / "landing"
    landing.mkdir()
    create_contract_tables(warehouse, extra_column=False)
    with duckdb.connect(str(warehouse)) as con:
        insert(con, "shopify.customer", [customer(1, "ok@example.com", "Ok", "Lee", phone="+14155550100", accepts_marketing=True,
                                                  verified_email=True, sms_marketing_consent_state="not_subscribed",
                                                  email_marketing_consent_opt_in_level="single_opt_in",
                                                  email_marketing_consent_consent_updated_at="2026-01-01",
                                                  sms_marketing_consent_consent_updated_at="2026-01-01"),
                                         customer(2, "latin1@example.com", "PLACEHOLDER", "Lee", phone="+14155550101",
                                                  accepts_marketing=True, verified_email=True,
                                                  sms_marketing_consent_state="not_subscribed",
                                                  email_marketing_consent_opt_in_level="single_opt_in",
                                                  email_marketing_consent_consent_updated_at="2026-01-01",
                                                  sms_marketing_consent_consent_updated_at="2026-01-01")])
        con.execute(f"copy shopify.customer to '{landing}/customer.csv' (header)")
    csv = landing / "customer.csv"
    csv.write_bytes(csv.read_bytes().replace(b"PLACEHOLDER", "Renée".encode("latin-1")))
    result = run_dbt(warehouse, "build", "--select", "stg_shopify__customers", check=False,
                     vars=f"{{shopify_external_location: '{landing}/{{name}}.csv'}}")
    assert result.returncode != 0
    assert "not utf-8 encoded" in result.stdout and str(csv) in result.stdout


# --------------------------------------------------------------------------------------------- empty
@artifact("empty", "empty", priority=15)
def build_empty(directory: Path, factory) -> None:
    warehouse = directory / "data" / "warehouse.duckdb"
    create_contract_tables(warehouse)
    run_dbt(warehouse, "build")


@pytest.fixture(scope="module")
def empty(request):
    return Built(shared(request, "empty"))


def test_empty_raw_tables_build_everything_empty(empty):
    assert empty.query("select as_of, as_of_source from intermediate.int_as_of") == [(None, "newest_activity")]
    for name in (*SYNCS, "sync_customerio__segment_members", "sync_cordial__list_members", "sync_talon_one__audience_members"):
        assert empty.scalar(f"select count(*) from syncs.{name}") == 0, name
