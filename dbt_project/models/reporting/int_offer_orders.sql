{{ config(materialized='ephemeral') }}
{#- Each person's valid orders in time order, with the one before and the one after: offers' windows open
    after an order and close on the next one. -#}

select
    customer_key,
    order_id,
    created_at,
    total_price,
    lag(created_at) over (partition by customer_key order by created_at, order_id) as previous_order_at,
    lead(created_at) over (partition by customer_key order by created_at, order_id) as next_order_at
from {{ ref('int_orders_attributed') }}
where is_valid
    and customer_key is not null
