{#- Cordial contacts: one row per person with a usable email, addressed by that email (Cordial's
    primary key); keyed by customer_key, so when a person's best email changes the sync engine leaves
    the old contact and writes the new one. Dates as ISO-8601 UTC strings, numbers as numbers. Consent is sent as an attribute; the
    channel subscribe status is never forced from here. -#}

with customers as (
    select * from {{ ref('customers') }}
    where cordial_email is not null
),

lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
),

segments as (
    select * from {{ ref('customer_segments') }}
),

final as (
    select
        customers.customer_key,
        customers.cordial_email as email,
        customers.first_name,
        customers.last_name,
        {{ to_rfc3339('lifecycle.first_order_timestamp') }} as first_order_at,
        {{ to_rfc3339('lifecycle.most_recent_order_timestamp') }} as last_order_at,
        cast(lifecycle.lifetime_count_orders as {{ dbt.type_int() }}) as orders_count,
        cast(lifecycle.lifetime_total_net as decimal(18, 2)) as lifetime_value,
        cast(lifecycle.average_order_value as decimal(18, 2)) as average_order_value,
        lifecycle.email_marketing_consent,
        segments.lifecycle_stage,
        segments.vip_tier,
        segments.incentive_tier
    from customers
    inner join lifecycle
        on customers.customer_key = lifecycle.customer_key
    inner join segments
        on customers.customer_key = segments.customer_key
)

select * from final
