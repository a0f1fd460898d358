{{ config(meta={'dagster': {'ref': {'name': 'customer_lifecycle'}}}) }}  -- reads several models: the asset it is a check of
-- Data health: anyone with orders has a first and last order date, and the lifecycle order count
-- matches the person's valid attributed orders up to the clock (catches mapping regressions before
-- revenue dips; a pinned as_of earlier than the newest data leaves later orders out on both sides).
with as_of as (
    select as_of from {{ ref('int_as_of') }}
),

orders as (
    select
        orders.customer_key,
        count(*) as valid_orders
    from {{ ref('int_orders_attributed') }} as orders
    cross join as_of
    where orders.is_valid
        and orders.customer_key is not null
        and orders.created_at <= as_of.as_of
    group by orders.customer_key
)

select
    lifecycle.customer_key,
    lifecycle.lifetime_count_orders,
    orders.valid_orders,
    lifecycle.first_order_timestamp,
    lifecycle.most_recent_order_timestamp
from {{ ref('customer_lifecycle') }} as lifecycle
left join orders
    on lifecycle.customer_key = orders.customer_key
where (lifecycle.lifetime_count_orders > 0
        and (lifecycle.most_recent_order_timestamp is null or lifecycle.first_order_timestamp is null))
    or lifecycle.lifetime_count_orders != coalesce(orders.valid_orders, 0)
