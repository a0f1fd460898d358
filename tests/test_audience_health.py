"""Audience health (marts.audience_health, built after the syncs): on a shop just built and synced every
audience at every destination is fully matched and no check warns; then, planted one each, a stuck member
(an exit rule that never fired), an identifier gap (members the destination cannot be sent) and an
unacknowledged member each warn, naming the audience. Real sample data, real dbt, real syncs to the
emulators over HTTP."""

import json

import duckdb
import pytest

from relay import cli, sample_data
from support.dbt import run_dbt

pytestmark = pytest.mark.e2e  # a shop built and synced, then the after-sync models twice: make test-e2e

WARNINGS = ("audience_has_stuck_members", "audience_members_unreachable", "audience_match_rate_low",
            "audience_exits_not_acknowledged", "audience_size_drifted")


def health(warehouse) -> tuple[dict[str, int], list[dict]]:
    """Build the after-sync models as the daily job does: each check's failing rows, and today's rows."""
    run_dbt(warehouse, "build", "--select", "tag:after_syncs")
    results = json.loads((warehouse.parent / "dbt" / "target" / "run_results.json").read_text())["results"]
    failures = {r["unique_id"].split(".")[2]: r["failures"] or 0 for r in results if r["unique_id"].startswith("test.")}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select * from marts.audience_health where planned_members is not null").fetchall()
        names = [d[0] for d in con.description]
    return failures, [dict(zip(names, row)) for row in rows]


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """A small shop, built and synced to the emulators (the module's own, planted on by the test)."""
    from support.emulators import serve_emulators, served_env

    tmp = tmp_path_factory.mktemp("health")
    warehouse = tmp / "data" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    with serve_emulators() as servers, pytest.MonkeyPatch.context() as env:
        for variable, value in {**served_env(servers), "RELAY_DATA_DIR": str(tmp / "data"),
                                "RELAY_WAREHOUSE": str(warehouse)}.items():
            env.setenv(variable, value)
        sample_data.generate(warehouse, customers=600, seed=4)
        assert cli.main(["build"]) == 0
        assert cli.main(["sync", "--allow-rejections", "--allow-large-change"]) == 0
        yield warehouse


def test_a_synced_shop_is_healthy_everywhere(synced):
    failures, rows = health(synced)
    assert {name: failures.get(name) for name in WARNINGS} == {name: 0 for name in WARNINGS}
    assert rows and {r["destination"] for r in rows} == {"customerio", "cordial", "talon_one"}
    assert all(r["match_rate"] == 1 and r["acknowledged_members"] == r["planned_members"] for r in rows), rows


def test_a_stuck_member_an_identifier_gap_and_an_unacknowledged_member_each_warn(synced):
    with duckdb.connect(str(synced)) as con:
        # Stuck: a member of a segment with a ttl whose open spell began long before it should have ended.
        segment, member = con.execute("""
            select memberships.segment, memberships.customer_key from marts.segment_memberships as memberships
            join marts.segment_definitions using (segment) where ttl is not null order by 1, 2 limit 1""").fetchone()
        con.execute("update marts.segment_membership_history set entered_at = entered_at - interval 400 days "
                    "where segment = ? and customer_key = ? and exited_at is null", [segment, member])
        # An identifier gap: a Cordial list's members are no longer in the sync model (no usable email).
        [gap] = con.execute("select audience from syncs.sync_cordial__list_members group by 1 "
                            "order by count(*) desc, 1 limit 1").fetchone()
        con.execute("delete from syncs.sync_cordial__list_members where audience = ?", [gap])
        # Unacknowledged: Talon.One never confirmed holding a member (its state row gone).
        [unconfirmed] = con.execute("""
            select json_extract_string(payload, '$.audience') from relay.sync_state
            where sync_name = 'sync_talon_one__audience_members' group by 1 order by count(*), 1 limit 1""").fetchone()
        con.execute("delete from relay.sync_state where sync_name = 'sync_talon_one__audience_members' "
                    "and json_extract_string(payload, '$.audience') = ?", [unconfirmed])
    failures, rows = health(synced)
    flagged = {name: sorted((r["destination"], r["audience"]) for r in rows if check(r))
               for name, check in (("stuck", lambda r: r["stuck_members"] > 0),
                                   ("unreachable", lambda r: r["unreachable_share"] > 0.2),
                                   ("unmatched", lambda r: r["match_rate"] < 0.99),
                                   ("exits", lambda r: r["exits_pending"] > 0))}
    assert flagged["stuck"] and {audience for _, audience in flagged["stuck"]} <= {
        r["audience"] for r in rows if r["segment"] == segment}
    assert flagged["unreachable"] == [("cordial", gap)] and flagged["exits"] == [("cordial", gap)]
    assert flagged["unmatched"] == [("talon_one", unconfirmed)]
    assert failures["audience_has_stuck_members"] == len(flagged["stuck"])
    assert failures["audience_members_unreachable"] == failures["audience_exits_not_acknowledged"] == 1
    assert failures["audience_match_rate_low"] == 1


def test_the_report_draws_its_charts_in_chromium(synced, tmp_path):
    """relay report on the shop: every chart drawn by plotly.js (offline, inlined), the catalog table there."""
    import os
    import shutil
    import subprocess

    from relay import publish, report
    from support.project import ROOT

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: `make test` installs it (Debian package chromium)")
        pytest.skip("chromium is not installed")
    health(synced)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RELAY_WAREHOUSE", str(synced))
        env.setenv("RELAY_DATA_DIR", str(synced.parent))
        publish.publish()
        page = report.write()
        with publish.connect_published() as con:  # every new mart is there for stakeholders
            for mart in ("offer_lift", "offer_exposures", "offer_redemptions", "audience_health"):
                assert con.execute(f"select count(*) from marts.{mart}").fetchone()[0] > 0, mart
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--virtual-time-budget=15000", f"--user-data-dir={tmp_path / 'chromium'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    # Each of the five charts (lift, rates, one per destination's audiences) drew its SVG.
    assert dom.count('class="main-svg"') >= 5 * 2, dom.count('class="main-svg"')  # plotly draws two layers each
    assert "Segments and where they go" in dom and "wh_winback_eligible" in dom
    screenshot = ROOT / "artifacts" / "report" / "report.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.unlink(missing_ok=True)
    subprocess.run([browser, *flags, "--window-size=1300,4200", f"--screenshot={screenshot}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert screenshot.exists() and screenshot.stat().st_size > 50_000
