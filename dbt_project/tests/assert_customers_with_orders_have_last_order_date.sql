-- Data health: anyone with orders has a first and last order date, and the lifecycle order count
-- matches the person's valid attributed orders (catches mapping regressions before revenue dips).
with orders as (
    select
        customer_key,
        count(*) as valid_orders
    from {{ ref('int_orders_attributed') }}
    where is_valid
        and customer_key is not null
    group by customer_key
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
