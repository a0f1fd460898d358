{#- Customer.io person events, one row per event of marts.customer_events, addressed by id = customer_key.
    The event's properties are the columns after occurred_at (nulls are left out). Marketing triggers
    (cart abandonment, segment changes) need the person's consent; order facts always go, since they end
    journeys. -#}

with events as (
    select * from {{ ref('customer_events') }}
    where {{ in_scope('customer_key') }}
),

lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
    where {{ in_scope('customer_key') }}
),

final as (
    select
        events.event_id,
        events.customer_key,
        events.event_name,
        {{ to_unix_seconds('events.occurred_at') }} as occurred_at,
        {{ event_marketing_allowed('events.event_name', 'lifecycle.email_marketing_consent') }} as marketing_allowed,
        events.order_id,
        cast(events.order_total as decimal(18, 2)) as order_total,
        cast(events.order_discount as decimal(18, 2)) as order_discount,
        events.discount_code,
        events.refund_id,
        cast(events.refund_amount as decimal(18, 2)) as refund_amount,
        events.checkout_token,
        events.recovery_url,
        events.segment
    from events
    left join lifecycle
        on events.customer_key = lifecycle.customer_key
)

select * from final
