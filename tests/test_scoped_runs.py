"""Scoped dbt runs (dbt_project/macros/scope/) give exactly what a full rebuild gives.

A build after a complete one recomputes only the identity components and people the loaders touched
since. Here the loaders append three hours of activity and also merge two people, change an email,
delete an order, share an email between two accounts and send an event for a known device; the scoped
build's tables must equal a --full-refresh build's, row for row.
"""

from datetime import timedelta
from pathlib import Path

import duckdb

from relay import sample_data
from support.dbt import run_dbt

# Everything a scoped run writes; the int_scope_* models describe the run itself.
SCHEMAS = ("intermediate", "marts", "syncs")


def tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    # data_health is a log of each build's measurements (its rows name the run), not state to compare.
    rows = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables where table_type = 'BASE TABLE' "
        f"and table_catalog = current_database() and table_schema in {SCHEMAS} and table_name not like 'int_scope_%' "
        "and table_name != 'data_health' order by 1").fetchall()
    return [r[0] for r in rows]


def snapshot(warehouse: Path, target: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"attach '{target}' as snap")
        for table in tables(con):
            schema = table.split(".")[0]
            con.execute(f"create schema if not exists snap.{schema}")
            con.execute(f"create table snap.{table} as select * from {table}")


def differences(warehouse: Path, snap: Path) -> dict[str, tuple[int, int]]:
    out = {}
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"attach '{snap}' as snap (read_only)")
        for table in tables(con):
            columns = ", ".join(f'"{c[0]}"' for c in con.execute(f"select * from {table} limit 0").description)
            only_full = con.execute(f"select count(*) from (select {columns} from {table} "
                                    f"except all select {columns} from snap.{table})").fetchone()[0]
            only_scoped = con.execute(f"select count(*) from (select {columns} from snap.{table} "
                                      f"except all select {columns} from {table})").fetchone()[0]
            if only_full or only_scoped:
                out[table] = (only_scoped, only_full)
    return out


def loader_changes(warehouse: Path) -> None:
    """What loaders do besides appending: merges, edits, deletes, a shared address, a late event."""
    with duckdb.connect(str(warehouse)) as con:
        t = con.execute('select max(_fivetran_synced) + interval 10 minute from shopify."order"').fetchone()[0]
        # Accounts with orders and an email and a phone no other account has.
        a, b, c, d, e = accounts = [r[0] for r in con.execute("""
            select id from shopify.customer
            where id in (select customer_id from shopify."order")
              and lower(email) in (select lower(email) from shopify.customer group by 1 having count(*) = 1)
              and phone in (select phone from shopify.customer group by 1 having count(*) = 1)
            order by id limit 5""").fetchall()]
        params = {"t": t, "a": a, "b": b, "c": c, "d": d, "e": e}
        script = """
            -- A guest order with A's email and B's phone: the two people merge.
            insert into shopify."order"
            select * replace (99000001 as id, null as customer_id, (select phone from shopify.customer where id = $b) as phone,
                              $t as created_at, $t as updated_at, $t as _fivetran_synced)
            from shopify."order" where customer_id = $a limit 1;
            -- C changes their email.
            insert into shopify.customer
            select * replace ('changed-' || id || '@example.org' as email, $t as updated_at, $t as _fivetran_synced)
            from shopify.customer where id = $c;
            -- One of D's orders is deleted in Shopify.
            insert into shopify."order"
            select * replace (true as _fivetran_deleted, $t as _fivetran_synced)
            from shopify."order" where id = (select min(id) from shopify."order" where customer_id = $d);
            -- A new account signs up with E's email: the email is shared and stops linking.
            insert into shopify.customer
            select * replace (99000002 as id, $t as created_at, $t as updated_at, $t as _fivetran_synced)
            from shopify.customer where id = $e;
            -- A guest completes someone's open checkout: the order carries only its token.
            insert into shopify."order"
            select * replace (99000003 as id, null as customer_id, null as email, null as phone,
                              null as shipping_address_address_1, null as billing_address_address_1,
                              (select max(token) from shopify.abandoned_checkout where completed_at is null) as checkout_token,
                              $t as created_at, $t as updated_at, $t as _fivetran_synced)
            from shopify."order" where customer_id = $a limit 1;
            -- A's device sends an event.
            insert into segment.tracks
            select * replace ('late-event-1' as id, $t as "timestamp", $t as received_at)
            from segment.tracks where user_id = cast($a as varchar) limit 1;
        """
        for statement in filter(str.strip, script.split(";")):
            con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
    return accounts


def scope_of_last_run(warehouse: Path) -> tuple[bool, int, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        scoped = con.execute("select is_scoped from intermediate.int_scope_watermark").fetchone()[0]
        keys = con.execute("select count(*) from intermediate.int_scope_keys").fetchone()[0]
        people = con.execute("select count(*) from marts.customers").fetchone()[0]
    return scoped, keys, people


def same_person(warehouse: Path, *accounts: int) -> bool:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select count(distinct customer_key) from intermediate.int_identity_records_resolved "
                           "where record_type = 'shopify_customer' and record_id in (select unnest(?))",
                           [[str(a) for a in accounts]]).fetchone()[0] == 1


def test_a_scoped_build_equals_a_full_rebuild(warehouse, tmp_path):
    sample_data.generate(warehouse, customers=1500, seed=11)
    run_dbt(warehouse, "build", "--exclude", "resource_type:unit_test")
    assert scope_of_last_run(warehouse)[0] is False  # nothing to build on yet

    sample_data.append(warehouse, hours=3)
    a, b, *_ = loader_changes(warehouse)
    assert not same_person(warehouse, a, b)
    run_dbt(warehouse, "build", "--exclude", "resource_type:unit_test")
    scoped, keys, people = scope_of_last_run(warehouse)
    assert scoped and 0 < keys < people / 5, (scoped, keys, people)
    assert same_person(warehouse, a, b)  # the merge happened in the scoped run

    snap = tmp_path / "scoped.duckdb"
    snapshot(warehouse, snap)
    run_dbt(warehouse, "build", "--full-refresh", "--exclude", "resource_type:unit_test")
    assert differences(warehouse, snap) == {}


def test_a_build_after_an_incomplete_one_is_not_scoped(warehouse):
    sample_data.generate(warehouse, customers=200, seed=12)
    # dbt run, not build: the scope log is written by both alike, and tests would only add time.
    run_dbt(warehouse, "run")
    run_dbt(warehouse, "run")
    assert scope_of_last_run(warehouse)[0] is True
    # A run that was cut off (or failed, or built only some models) never closes its row.
    run_dbt(warehouse, "run", "--select", "customers")
    run_dbt(warehouse, "run")
    assert scope_of_last_run(warehouse)[0] is False
    run_dbt(warehouse, "run")
    assert scope_of_last_run(warehouse)[0] is True


def lifecycle(warehouse: Path, customer_key: str) -> tuple:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select is_replenishment_due, recent_product_views from marts.customer_lifecycle "
                           "where customer_key = ?", [customer_key]).fetchone()


def test_the_clock_passing_intent_and_replenishment_boundaries_scopes_those_people(warehouse, tmp_path):
    """Nothing but the clock moves: a replenishment falls due (a boundary stored by the previous run), another
    one's grace ends, and a product view leaves the intent window (a boundary after an event). Each of those
    people is in the scoped run's scope, their rows change, and the result equals a full rebuild."""
    sample_data.generate(warehouse, customers=600, seed=13)
    run_dbt(warehouse, "run")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        clock = con.execute("select as_of from intermediate.int_as_of").fetchone()[0]
        # The next replenishment to fall due, the next grace to end, and the next view to age out of the window.
        due, due_at = con.execute("select customer_key, replenishment_due_at from marts.customer_lifecycle "
                                  "where replenishment_due_at > ? order by 2, 1 limit 1", [clock]).fetchone()
        ending, ends_at = con.execute("select customer_key, replenishment_due_until from marts.customer_lifecycle "
                                      "where is_replenishment_due order by 2, 1 limit 1").fetchone()
        viewer, view_leaves_at = con.execute("""
            select customer_key, min(occurred_at) + interval 7 day from intermediate.int_product_signals_attributed
            where signal_type = 'product_viewed' and occurred_at > ? - interval 7 day and occurred_at <= ?
            group by 1 order by 2, 1 limit 1""", [clock, clock]).fetchone()
        accounts = [r[0] for r in con.execute("select cast(shopify_customer_id as varchar) from marts.customers "
                                              "where customer_key in (?, ?, ?)", [due, ending, viewer]).fetchall()]
    before = {key: lifecycle(warehouse, key) for key in (due, ending, viewer)}
    assert before[due][0] is False and before[ending][0] is True and before[viewer][1] > 0
    # The clock moves past all three: someone else's device sends an event.
    tick = max(due_at, ends_at, view_leaves_at) + timedelta(minutes=1)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("""insert into segment.tracks select * replace ('clock-tick' as id, $t as "timestamp", $t as received_at)
                       from (select * from segment.tracks where user_id is not null and not list_contains($accounts, user_id)
                             order by id limit 1)""", {"t": tick, "accounts": accounts})
    run_dbt(warehouse, "run")
    assert scope_of_last_run(warehouse)[0] is True
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select as_of from intermediate.int_as_of").fetchone()[0] == tick
        scoped = {r[0] for r in con.execute("select customer_key from intermediate.int_scope_keys").fetchall()}
    assert {due, ending, viewer} <= scoped
    assert lifecycle(warehouse, due)[0] is True
    assert lifecycle(warehouse, ending)[0] is False
    assert lifecycle(warehouse, viewer)[1] < before[viewer][1]

    snap = tmp_path / "scoped.duckdb"
    snapshot(warehouse, snap)
    run_dbt(warehouse, "run", "--full-refresh")
    assert differences(warehouse, snap) == {}
