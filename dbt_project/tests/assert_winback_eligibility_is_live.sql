{{ config(tags=['gate'], meta={'dagster': {'ref': {'name': 'winback_eligibility'}}}) }}
-- Gate: blocks every sync on both paths (orchestration/schedules.py). It reads several models, so it names
-- the asset it is a check of: dagster-dbt runs only the tests it can attach to an asset.
-- Winback eligibility is consistent with the clock: an eligible person's offer has not ended and their
-- last order is older than the window; anyone else's winback_eligible_until is set and not in the future.
with as_of as (
    select as_of from {{ ref('int_as_of') }}
)

select
    winback.customer_key,
    winback.most_recent_order_timestamp,
    winback.winback_eligible_until,
    as_of.as_of
from {{ ref('winback_eligibility') }} as winback
cross join as_of
where (winback.winback_eligible
        and (
            winback.winback_eligible_until is null
            or winback.winback_eligible_until <= as_of.as_of
            or {{ time_boundary('winback_window_start', 'winback.most_recent_order_timestamp') }} > as_of.as_of
        ))
    -- an offer end in the future for someone not eligible reads as a live offer where it cannot be unset
    or (not winback.winback_eligible and not (winback.winback_eligible_until <= as_of.as_of))
