{{ config(materialized='ephemeral') }}
{#- Every time a person entered an offer's window (var relay_offers), open or closed: winback when their last
    valid order became winback_window_days old with no order since (until the offer ends or they buy); cart
    when a checkout passed its grace with no purchase (until cart_long_window_hours after it started; one
    entry per person and day). converts_until: the end of the offer's conversion window. -#}

{%- set offers = var('relay_offers') %}

with orders as (
    select * from {{ ref('int_offer_orders') }}
),

checkouts as (
    select
        customer_key,
        started_at,
        row_number() over (partition by customer_key, {{ dbt.date_trunc('day', 'started_at') }} order by started_at) as nth_of_day
    from {{ ref('int_checkouts_started') }}
    where customer_key is not null
        and (converted_at is null or converted_at >= {{ time_boundary('cart_grace_end', 'started_at') }})
),

winback as (
    select
        'winback' as offer,
        customer_key,
        {{ time_boundary('winback_window_start', 'created_at') }} as entered_at,
        {{ time_boundary('winback_offer_end', 'created_at') }} as window_ends_at
    from orders
    where next_order_at is null
        or next_order_at >= {{ time_boundary('winback_window_start', 'created_at') }}
),

cart as (
    select
        'cart' as offer,
        customer_key,
        {{ time_boundary('cart_grace_end', 'started_at') }} as entered_at,
        {{ time_boundary('cart_long_window_end', 'started_at') }} as window_ends_at
    from checkouts
    where nth_of_day = 1
),

final as (
    {%- for name in ['winback', 'cart'] if name in offers %}
    select
        {{ name }}.*,
        {{ dbt.dateadd('day', offers[name].conversion_days, name ~ '.entered_at') }} as converts_until
    from {{ name }}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
)

select * from final
