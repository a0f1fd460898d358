{#- Customer.io people: one row per person, addressed by id = customer_key. Only absolute facts
    (timestamps as Unix seconds, counts, states): an unchanged person yields an unchanged row. -#}

with customers as (
    select * from {{ ref('customers') }}
    where {{ in_scope('customer_key') }}
),

lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
    where {{ in_scope('customer_key') }}
),

segments as (
    select * from {{ ref('customer_segments') }}
    where {{ in_scope('customer_key') }}
),

final as (
    select
        customers.customer_key,
        customers.email,
        customers.phone,
        customers.first_name,
        customers.last_name,
        customers.shopify_customer_id,
        {{ to_unix_seconds('customers.first_seen_at') }} as created_at,
        {{ to_unix_seconds('lifecycle.first_order_timestamp') }} as first_order_at,
        {{ to_unix_seconds('lifecycle.most_recent_order_timestamp') }} as last_order_at,
        cast(lifecycle.lifetime_count_orders as {{ dbt.type_int() }}) as orders_count,
        cast(lifecycle.lifetime_total_net as decimal(18, 2)) as lifetime_value,
        cast(lifecycle.average_order_value as decimal(18, 2)) as average_order_value,
        cast(lifecycle.lifetime_count_refunded_orders as {{ dbt.type_int() }}) as refunded_orders_count,
        cast(lifecycle.lifetime_count_promo_redemptions as {{ dbt.type_int() }}) as promo_redemptions_count,
        {{ to_unix_seconds('lifecycle.last_seen_at') }} as last_seen_at,
        lifecycle.email_marketing_consent,
        lifecycle.sms_marketing_consent,
        lifecycle.is_email_unsubscribed as unsubscribed,
        segments.lifecycle_stage,
        segments.vip_tier,
        segments.incentive_tier,
        segments.winback_eligible,
        {{ to_unix_seconds('segments.winback_eligible_until') }} as winback_eligible_until,
        segments.cart_window,
        {{ to_unix_seconds('case when segments.cart_window is not null then segments.cart_abandoned_at end') }} as cart_abandoned_at,
        case when segments.cart_window is not null then segments.cart_recovery_url end as cart_recovery_url,
        segments.is_discount_abuser as discount_abuser,
        segments.is_suppressed as suppressed,
        segments.is_holdout as holdout
    from customers
    inner join lifecycle
        on customers.customer_key = lifecycle.customer_key
    inner join segments
        on customers.customer_key = segments.customer_key
)

select * from final
