{#- The clock every segment reads. Models never use the wall clock: `as_of` is the var when given,
    else the newest landed activity (order placed, checkout started, event received), so the same
    data always yields the same segments and a rebuild on unchanged data changes nothing.
    An event's device clock can run ahead, so an event counts at the earlier of its device time and
    the time Segment received it. A scoped run (macros/scope/) reads only the activity that landed
    since the previous run: the clock moves forward from the previous run's, never back. -#}

{%- set previous = relay_previous_run() %}

with orders as (
    select created_at from {{ ref('stg_shopify__orders') }}
    where {{ in_changed('order_id', 'shopify_order', 'bigint') }}
),

checkouts as (
    select created_at from {{ ref('stg_shopify__abandoned_checkouts') }}
    where {{ in_changed('checkout_id', 'shopify_checkout', 'bigint') }}
),

events as (
    select occurred_at, received_at from {{ ref('stg_segment__tracks') }}
    where {{ in_changed('event_id', 'segment_track') }}
),

activity as (
    select max(created_at) as activity_at from orders
    union all
    select max(created_at) as activity_at from checkouts
    union all
    select
        max(case when received_at < occurred_at then received_at else occurred_at end) as activity_at
    from events
    {%- if previous and previous.as_of %}
    union all
    select cast('{{ previous.as_of }}' as {{ dbt.type_timestamp() }}) as activity_at
    {%- endif %}
),

newest as (
    select max(activity_at) as newest_activity_at
    from activity
),

final as (
    select
        {%- if var('as_of', none) %}
        cast('{{ var("as_of") }}' as {{ dbt.type_timestamp() }}) as as_of,
        'var' as as_of_source
        {%- else %}
        newest_activity_at as as_of,
        'newest_activity' as as_of_source
        {%- endif %}
    from newest
)

select * from final
