{#- Talon.One custom events, one row per cart-abandonment and segment event of marts.customer_events,
    addressed by profileId = customer_key, typed snake_case (checkout_abandoned, segment_entered,
    segment_exited) so promotion rules can react to them. Talon.One keeps every event it receives: the
    engine journals each before sending and never sends one of unknown fate twice. -#}

with events as (
    select * from {{ ref('customer_events') }}
    where {{ in_scope('customer_key') }}
        and event_name in ('Checkout Abandoned', 'Segment Entered', 'Segment Exited')
),

final as (
    select
        event_id,
        customer_key,
        lower(replace(event_name, ' ', '_')) as event_type,
        occurred_at,
        cast(order_total as decimal(18, 2)) as cart_total,
        checkout_token,
        segment
    from events
)

select * from final
