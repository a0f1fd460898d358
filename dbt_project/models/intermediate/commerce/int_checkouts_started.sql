{{ config(scope_delete=[['customer_key', 'key'], ['checkout_token', 'self']]) }}

{#- Every checkout a person started, from Shopify's abandoned_checkout table and from Segment
    "Checkout Started" events, one row per checkout token (the event and the Shopify row of one
    checkout share it). A checkout is converted when an order carries its token, when Shopify marked
    it completed, or when the same person placed any non-test order (or sent "Order Completed") at or
    after its start: matching by stitched identity catches orders placed on another device or as a guest. -#}

with shopify_checkouts as (
    select * from {{ ref('stg_shopify__abandoned_checkouts') }}
),

checkout_records as (
    select * from {{ ref('int_identity_records_resolved') }}
    where record_type = 'shopify_checkout'
),

events as (
    select * from {{ ref('int_events_attributed') }}
),

orders as (
    select * from {{ ref('int_orders_attributed') }}
    where not is_test_order
),

started as (
    select
        coalesce(shopify_checkouts.checkout_token, 'shopify_checkout:' || cast(shopify_checkouts.checkout_id as {{ dbt.type_string() }})) as checkout_token,
        checkout_records.customer_key,
        shopify_checkouts.created_at as started_at,
        shopify_checkouts.completed_at,
        shopify_checkouts.recovery_url,
        shopify_checkouts.total_price,
        'shopify' as started_source,
        'shopify_checkout:' || cast(shopify_checkouts.checkout_id as {{ dbt.type_string() }}) as record
    from shopify_checkouts
    left join checkout_records
        on cast(shopify_checkouts.checkout_id as {{ dbt.type_string() }}) = checkout_records.record_id

    union all

    select
        coalesce(checkout_token, 'segment_event:' || event_id) as checkout_token,
        customer_key,
        occurred_at as started_at,
        cast(null as {{ dbt.type_timestamp() }}) as completed_at,
        cast(null as {{ dbt.type_string() }}) as recovery_url,
        cast(null as {{ dbt.type_numeric() }}) as total_price,
        'segment' as started_source,
        'segment_track:' || event_id as record
    from events
    where event_name = 'Checkout Started'
),

-- Scoped: the checkouts of the people in scope, those of a record or event re-read this run, and
-- those an order re-resolved this run carries (every one of them has a person in scope, or none).
scope_tokens as (
    select checkout_token
    from started
    where {{ in_scope('customer_key') }}
        or {{ in_scope('record', 'record') }}
        or {{ in_scope('record', 'changed') }}

    union

    select checkout_token
    from orders
    where {{ in_scope("'shopify_order:' || cast(order_id as varchar)", 'record') }}
),

checkouts as (
    select
        checkout_token,
        -- The Shopify row knows the buyer best; the event fills in logged-out checkouts.
        coalesce(
            max(case when started_source = 'shopify' then customer_key end),
            max(customer_key)
        ) as customer_key,
        min(started_at) as started_at,
        max(completed_at) as completed_at,
        max(recovery_url) as recovery_url,
        max(total_price) as total_price
    from started
    where checkout_token in (select checkout_token from scope_tokens)
    group by checkout_token
),

orders_by_token as (
    select
        checkout_token,
        min(created_at) as ordered_at
    from orders
    where checkout_token is not null
        {%- if relay_scoped() %}
        -- Scoped: only the checkouts built here are looked up.
        and checkout_token in (select checkout_token from checkouts)
        {%- endif %}
    group by checkout_token
),

purchases as (
    select
        customer_key,
        created_at as purchased_at
    from orders
    where customer_key is not null

    union all

    select
        customer_key,
        occurred_at as purchased_at
    from events
    where event_name = 'Order Completed'
        and customer_key is not null
),

later_purchases as (
    select
        checkouts.checkout_token,
        min(purchases.purchased_at) as first_purchase_after_at
    from checkouts
    inner join purchases
        on checkouts.customer_key = purchases.customer_key
        and purchases.purchased_at >= checkouts.started_at
    group by checkouts.checkout_token
),

final as (
    select
        checkouts.checkout_token,
        checkouts.customer_key,
        checkouts.started_at,
        checkouts.recovery_url,
        checkouts.total_price,
        checkouts.completed_at,
        orders_by_token.ordered_at as token_ordered_at,
        later_purchases.first_purchase_after_at,
        -- The earliest evidence that this checkout ended in a purchase.
        case
            when orders_by_token.ordered_at is not null or checkouts.completed_at is not null
                or later_purchases.first_purchase_after_at is not null
                then least(
                    coalesce(orders_by_token.ordered_at, checkouts.completed_at, later_purchases.first_purchase_after_at),
                    coalesce(checkouts.completed_at, orders_by_token.ordered_at, later_purchases.first_purchase_after_at),
                    coalesce(later_purchases.first_purchase_after_at, orders_by_token.ordered_at, checkouts.completed_at)
                )
        end as converted_at
    from checkouts
    left join orders_by_token
        on checkouts.checkout_token = orders_by_token.checkout_token
    left join later_purchases
        on checkouts.checkout_token = later_purchases.checkout_token
)

select * from final
