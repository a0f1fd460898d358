{#- Who each offer was for, and what they did next: one row per person and moment they entered the offer's
    window (int_offer_windows: winback, cart), whatever exclusion then kept the offer from them. The arm is
    the holdout's (a hash of the key, independent of anything the person did), so comparing the arms is an
    intent-to-treat comparison: it measures what the program, exclusions and all, added. Counted only once the conversion window
    (relay_offers.<offer>.conversion_days) has closed by the clock. -#}

with as_of as (
    select as_of from {{ ref('int_as_of') }}
),

observed as (
    select windows.*
    from {{ ref('int_offer_windows') }} as windows
    cross join as_of
    where windows.converts_until <= as_of.as_of
),

outcomes as (
    select
        observed.offer,
        observed.customer_key,
        observed.entered_at,
        count(orders.order_id) as orders,
        min(orders.created_at) as converted_at,
        coalesce(sum(orders.total_price), 0) as revenue
    from observed
    left join {{ ref('int_orders_attributed') }} as orders
        on observed.customer_key = orders.customer_key
        and orders.is_valid
        and orders.created_at >= observed.entered_at
        and orders.created_at < least(observed.converts_until, observed.window_ends_at)
    group by 1, 2, 3
),

final as (
    select
        observed.offer,
        observed.customer_key,
        observed.entered_at,
        {{ dbt.date_trunc('month', 'observed.entered_at') }} as period,
        observed.converts_until,
        case when holdout.is_holdout then 'holdout' else 'treated' end as arm,
        outcomes.orders > 0 as converted,
        outcomes.converted_at,
        outcomes.revenue
    from observed
    inner join outcomes
        on observed.offer = outcomes.offer
        and observed.customer_key = outcomes.customer_key
        and observed.entered_at = outcomes.entered_at
    inner join {{ ref('holdout_group') }} as holdout
        on observed.customer_key = holdout.customer_key
)

select * from final
