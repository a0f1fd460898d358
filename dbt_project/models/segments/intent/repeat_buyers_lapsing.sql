{#- Bought at least twice, and the last order is repeat_lapse_days old: until winback takes over (the
    winback window), so the two audiences never hold the same person. -#}

with lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

final as (
    select
        lifecycle.customer_key,
        {{ time_boundary('winback_window_start', 'lifecycle.most_recent_order_timestamp') }} as member_until,
        cast(lifecycle.lifetime_count_orders as {{ dbt.type_string() }}) || ' orders' as reason
    from lifecycle
    cross join as_of
    where lifecycle.lifetime_count_orders >= 2
        and {{ dbt.dateadd('day', var('repeat_lapse_days'), 'lifecycle.most_recent_order_timestamp') }} <= as_of.as_of
        and {{ time_boundary('winback_window_start', 'lifecycle.most_recent_order_timestamp') }} > as_of.as_of
        and {{ relay_not_excluded('lifecycle.customer_key') }}
)

select * from final
