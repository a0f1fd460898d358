{#- Talon.One customer profiles, addressed by integrationId (prefix || customer_key, never changes):
    only the attributes Talon.One rules evaluate at redemption time. Times as RFC 3339 UTC strings. -#}

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
        customers.talon_one_integration_id as integration_id,
        cast(lifecycle.lifetime_count_orders as {{ dbt.type_int() }}) as orders_count,
        {{ to_rfc3339('lifecycle.most_recent_order_timestamp') }} as last_order_at,
        cast(lifecycle.lifetime_total_net as decimal(18, 2)) as lifetime_value,
        cast(lifecycle.lifetime_count_promo_redemptions as {{ dbt.type_int() }}) as promo_redemptions_count,
        {{ to_rfc3339('lifecycle.last_promo_redeemed_at') }} as last_promo_redeemed_at,
        segments.vip_tier,
        segments.incentive_tier,
        segments.winback_eligible,
        {{ to_rfc3339('segments.winback_eligible_until') }} as winback_eligible_until,
        segments.is_discount_abuser as discount_abuser
    from customers
    inner join lifecycle
        on customers.customer_key = lifecycle.customer_key
    inner join segments
        on customers.customer_key = segments.customer_key
)

select * from final
