{{ config(tags=['gate']) }}  -- gate: blocks every sync on both paths (orchestration/schedules.py)
-- Nobody excluded from promotions is promo-eligible: suppressed, held-out and discount-abusing people
-- get no winback eligibility and incentive_tier 'none'; suppressed and held-out people also get no
-- cart window (abusers may still get a full-price cart reminder: their tier carries no incentive).
select
    customer_key,
    is_suppressed,
    is_holdout,
    is_discount_abuser,
    winback_eligible,
    cart_window,
    incentive_tier,
    is_promo_eligible
from {{ ref('customer_segments') }}
where (
        (is_suppressed or is_holdout or is_discount_abuser)
        and (winback_eligible or incentive_tier != 'none' or is_promo_eligible)
    )
    or ((is_suppressed or is_holdout) and cart_window is not null)
