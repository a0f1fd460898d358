with source as (
    {{ relay_source('segment', 'tracks') }}
),

cleaned as (
    select
        {{ clean_text('id') }} as event_id,
        {{ clean_text('anonymous_id') }} as anonymous_id,
        {{ clean_text('user_id') }} as user_id,
        {{ clean_text('event') }} as event_name,
        {{ clean_timestamp('timestamp') }} as occurred_at,
        {{ clean_timestamp('received_at') }} as received_at,
        {{ clean_text('context_page_url') }} as page_url,
        {{ clean_text('order_id') }} as order_id,
        {{ clean_text('checkout_id') }} as checkout_token,
        upper({{ clean_text('coupon') }}) as coupon,
        cast(revenue as {{ dbt.type_numeric() }}) as revenue
    from source
),

-- Segment delivers at least once: the same message id can land twice.
deduplicated as (
    select
        *,
        row_number() over (partition by event_id order by received_at, occurred_at) as delivery_rank
    from cleaned
)

select
    event_id,
    anonymous_id,
    user_id,
    event_name,
    occurred_at,
    received_at,
    page_url,
    order_id,
    checkout_token,
    coupon,
    revenue
from deduplicated
where delivery_rank = 1
