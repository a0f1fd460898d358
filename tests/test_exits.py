"""Exits that cannot leak: every destination answers "is this person eligible right now?" correctly at all
times, also Talon.One, which cannot unset a number, boolean or time.

End to end on sample data (dbt build, the shipped sync models, the three emulators over HTTP): two winback-
eligible people are merged by a guest order carrying one's email and the other's phone, a third buys
again. After the next build and syncs, each of them reads not eligible at every destination (attributes
and winback audiences), every winback_eligible_until they hold is at or before the event, and the retired
key's Talon.One profile holds the declared exit values. Declarations a destination cannot express are
refused when they load.
"""

import json
from datetime import datetime, timezone

import duckdb
import pytest

from support.dbt import run_dbt
from support.project import DBT_DIR
from relay import pipeline, sample_data
from sinks.declarations import DeclarationError, load_specs

pytestmark = pytest.mark.slow

WINBACK = "wh_winback_eligible"


def sync_everything(warehouse) -> None:
    for spec in load_specs(DBT_DIR / "target" / "manifest.json"):
        result = pipeline.run_sync(spec, allow_large_change=True)
        assert result.status == "succeeded" and not result.rejected, (spec.name, result.message, result.rejected)


def eligible_accounts(con, n: int) -> list[tuple[str, int]]:
    """(customer_key, Shopify account) of winback-eligible people whose account's email and phone are theirs alone."""
    return con.execute("""
        select segments.customer_key, cast(records.record_id as bigint)
        from marts.customer_segments as segments
        inner join intermediate.int_identity_records_resolved as records
            on records.customer_key = segments.customer_key and records.record_type = 'shopify_customer'
        inner join shopify.customer as accounts on accounts.id = cast(records.record_id as bigint)
        where segments.winback_eligible
          and lower(accounts.email) in (select lower(email) from shopify.customer group by 1 having count(*) = 1)
          and accounts.phone in (select phone from shopify.customer group by 1 having count(*) = 1)
        order by 1 limit ?""", [n]).fetchall()


def held(emulators) -> dict:
    """What each destination holds: attributes by identifier and winback audience members."""
    cio, talon, cordial = (emulators[n].state.to_json() for n in ("customerio", "talon_one", "cordial"))
    cio_ids = {cio_id: p.get("id") for cio_id, p in cio["people"].items()}
    return {
        "customerio": {p["id"]: p["attributes"] for p in cio["people"].values() if "id" in p},
        "talon_one": {i: p["attributes"] for i, p in talon["profiles"].items()},
        "customerio_winback": {cio_ids[m] for s in cio["segments"].values() if s["name"] == WINBACK for m in s["members"]},
        "talon_one_winback": {m for a in talon["audiences"].values() if a["name"] == WINBACK for m in a["members"]},
        "cordial_winback": {cordial["contacts"][c]["email"] for lst in cordial["lists"].values()
                            if lst["name"] == WINBACK for c in lst["members"]},
    }


def test_a_purchase_and_a_merge_leave_every_destination_reading_not_eligible(emulators, warehouse):
    sample_data.generate(warehouse, customers=600, seed=5)
    run_dbt(warehouse, "build", "--exclude", "resource_type:unit_test")
    sync_everything(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        (buyer, buyer_account), (kept, kept_account), (merged, merged_account) = eligible_accounts(con, 3)
        emails = dict(con.execute("select customer_key, email from syncs.sync_cordial__list_members "
                                  "where customer_key in (?, ?, ?)", [buyer, kept, merged]).fetchall())
        event = con.execute("select as_of + interval 10 minute from intermediate.int_as_of").fetchone()[0]
        before = held(emulators)
        assert {buyer, kept, merged} <= before["customerio_winback"] & before["talon_one_winback"]
        assert all(before["talon_one"][k]["winback_eligible"] is True for k in (buyer, kept, merged))
        # The buyer orders again; a guest order with one's email and the other's phone merges two people.
        con.execute("""
            insert into shopify."order"
            select * replace (99100001 as id, $t as created_at, $t as processed_at, $t as updated_at, $t as _fivetran_synced)
            from shopify."order"
            where customer_id = $buyer and cancelled_at is null and not coalesce(test, false)
              and financial_status = 'paid'
            limit 1""", {"t": event, "buyer": buyer_account})
        con.execute("""
            insert into shopify."order"
            select * replace (99100002 as id, null as customer_id,
                              (select email from shopify.customer where id = $kept) as email,
                              (select phone from shopify.customer where id = $merged) as phone,
                              $t as created_at, $t as processed_at, $t as updated_at, $t as _fivetran_synced)
            from shopify."order"
            where customer_id = $kept and cancelled_at is null and not coalesce(test, false) and financial_status = 'paid'
            limit 1""", {"t": event, "kept": kept_account, "merged": merged_account})

    run_dbt(warehouse, "build", "--exclude", "resource_type:unit_test")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        [(retired, survivor)] = con.execute(
            "select retired_key, surviving_key from marts.identity_merges where retired_key in (?, ?)",
            [kept, merged]).fetchall()
    assert {retired, survivor} == {kept, merged}
    sync_everything(warehouse)

    after = held(emulators)
    event_unix = event.replace(tzinfo=timezone.utc).timestamp()
    for key in (buyer, survivor, retired):
        for audience in ("customerio_winback", "talon_one_winback"):
            assert key not in after[audience], (key, audience)
        cio = after["customerio"].get(key, {})  # the retired person was merged into the survivor: gone
        assert (key == retired) == (key not in after["customerio"]), key
        assert cio.get("winback_eligible") in (False, None, ""), (key, cio)
        assert cio.get("winback_eligible_until") in (None, "") or cio["winback_eligible_until"] <= event_unix
        talon = after["talon_one"][key]  # integrationId = customer_key (no prefix)
        assert talon["winback_eligible"] is False, (key, talon)
        until = datetime.fromisoformat(talon["winback_eligible_until"].replace("Z", "+00:00"))
        assert until.timestamp() <= event_unix, (key, talon["winback_eligible_until"], event)
    assert not {emails[buyer], emails[kept], emails[merged]} & after["cordial_winback"]
    # The survivor takes the retired person's email, which that person holds at Customer.io until the merge
    # (sent after the survivor's update) frees it: the survivor's update refuses the email silently (a 2xx,
    # logged as an attribute update failure) and the rest of it (eligibility above) lands, in an entry of its
    # own; the re-assertion after the merge meets only this workspace's rule that an email changes by cio_id.
    failures = emulators["customerio"].state.to_json()["attribute_failures"]
    assert [f["reason"] for f in failures if f["identifier"] == f"id:{survivor}"] == [
        "email belongs to another person", "changing email needs the person addressed by cio_id"], failures
    # The retired profile holds what the declaration says it holds once a person leaves the model.
    assert after["talon_one"][retired]["winback_eligible_until"] == "1970-01-01T00:00:00Z"
    assert after["talon_one"][retired]["discount_abuser"] is False
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from relay.sync_state where record_key = ?", [retired]).fetchone()[0] == 0


def manifest_with(tmp_path, column_meta: dict, data_type: str = "boolean"):
    """A manifest of one Talon.One attributes sync with one attribute column."""
    node = {"resource_type": "model", "name": "sync_talon_one__test", "schema": "syncs", "config": {"meta": {
        "sync": {"destination": "talon_one", "object": "attributes", "primary_key": ["customer_key"],
                 "identifier": "customer_key"}}},
        "columns": {"customer_key": {"data_type": "varchar"},
                    "winback_eligible": {"data_type": data_type, "config": {"meta": column_meta}}}}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"nodes": {"model.relay.sync_talon_one__test": node}}))
    return path


@pytest.mark.parametrize("meta, data_type, message", [
    ({}, "boolean", "column winback_eligible becomes a Talon.One boolean attribute, which Talon.One cannot unset"),
    ({"talon_one_type": "time"}, "varchar", "column winback_eligible becomes a Talon.One time attribute"),
    ({"exit_value": "no"}, "boolean", "column winback_eligible: meta.exit_value is 'no', which does not fit"),
    ({"exit_value": 0}, "boolean", "meta.exit_value is 0, which does not fit"),
])
def test_an_exit_the_destination_cannot_express_is_refused_at_load(tmp_path, meta, data_type, message):
    with pytest.raises(DeclarationError, match="sync model sync_talon_one__test: .*") as refused:
        load_specs(manifest_with(tmp_path, meta, data_type))
    assert message in str(refused.value)


def test_a_declared_exit_value_loads(tmp_path):
    [spec] = load_specs(manifest_with(tmp_path, {"exit_value": False}))
    assert spec.exit_values == {"winback_eligible": False}
