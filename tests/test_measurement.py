"""Measurement recovers what the sample data planted: a shop whose winback offer works (relay sample-data
--append-hours ... --offer-lift U: the generator reads the audiences Relay built and makes the people the
offer reached, and only them, convert more) gets a lift in marts.offer_lift whose 95% interval holds the
planted effect, with the point estimate within the interval's half-width of it, on two seeds; with no
effect, the interval holds 0. Redemptions that leaked (abusers, an expired offer) are counted. Real sample
data, real dbt runs; the holdout is half the shop so that the intervals are narrow enough to mean something."""

import json

import duckdb
import pytest

from relay import sample_data
from support.dbt import run_dbt

pytestmark = pytest.mark.e2e  # four dbt runs of a few thousand customers: make test-e2e

VARS = json.dumps({"holdout_share": 0.5})
MONTH = "2026-11-01"  # the appended weeks: entries from 1 to 15 November have a closed conversion window


def run_offer(warehouse, seed: int, lift: float) -> dict:
    """A shop built as it stood on 1 November, then four weeks in which the offer works as planted, built again:
    the planted truth and the report's row for November."""
    sample_data.generate(warehouse, customers=4000, seed=seed)
    run_dbt(warehouse, "run", vars=VARS)
    sample_data.append(warehouse, hours=28 * 24, offer_lift=lift)
    run_dbt(warehouse, "run", vars=VARS)
    run_dbt(warehouse, "test", "--select", "reporting", vars=VARS)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        truth = con.execute("select planted_lift, expected_lift from _relay_sample.offer_truth "
                            "where offer = 'winback' and period = ?", [MONTH]).fetchone()
        names = [d[0] for d in con.execute("select * from marts.offer_lift limit 0").description]
        row = dict(zip(names, con.execute("select * from marts.offer_lift where offer = 'winback' and period = ?",
                                          [MONTH]).fetchone()))
    return {"truth": truth[0] if truth else 0.0, "expected": truth[1] if truth else 0.0, "row": row}


@pytest.mark.parametrize("seed", [3, 8])
def test_the_planted_lift_is_inside_the_interval_and_near_the_estimate(warehouse, seed):
    found = run_offer(warehouse, seed, lift=0.35)
    truth, row = found["truth"], found["row"]
    low, high = row["lift_ci_low"], row["lift_ci_high"]
    print(f"seed {seed}: planted {truth:.3f} (expected {found['expected']:.3f}), estimated {row['lift_absolute']:.3f} [{low:.3f}, {high:.3f}] "
          f"({row['treated_people']} treated, {row['holdout_people']} held out)")
    assert truth > 0.1, found  # the offer reached enough people to plant a visible effect
    assert low <= truth <= high, found
    assert abs(row["lift_absolute"] - truth) <= (high - low) / 2, found
    assert row["redemption_rate"] > 0 and row["margin_impact"] is not None
    assert row["leaked_redemptions"] > 0 and row["abuse_rate"] > 0  # abusers redeemed without being eligible


def test_with_no_effect_the_interval_holds_zero(warehouse):
    row = run_offer(warehouse, 5, lift=0.0)["row"]
    assert row["lift_ci_low"] <= 0 <= row["lift_ci_high"], row
