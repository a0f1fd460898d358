{{ config(tags=['gate'], meta={'dagster': {'ref': {'name': 'customer_segments'}}}) }}
-- Gate: blocks every sync on both paths (orchestration/schedules.py). It reads several models, so it names
-- the asset it is a check of: dagster-dbt runs only the tests it can attach to an asset.
-- Nobody who placed a valid order within var suppress_recent_purchase_days of the as-of time is
-- winback-eligible or in a cart window (checked from the orders, independently of the suppression flags).
with as_of as (
    select as_of from {{ ref('int_as_of') }}
),

recent_buyers as (
    select distinct orders.customer_key
    from {{ ref('int_orders_attributed') }} as orders
    cross join as_of
    where orders.is_valid
        and orders.customer_key is not null
        and orders.created_at <= as_of.as_of
        and {{ time_boundary('recent_purchase_suppression_end', 'orders.created_at') }} > as_of.as_of
)

select
    segments.customer_key,
    segments.winback_eligible,
    segments.cart_window
from {{ ref('customer_segments') }} as segments
inner join recent_buyers
    on segments.customer_key = recent_buyers.customer_key
where segments.winback_eligible
    or segments.cart_window is not null
