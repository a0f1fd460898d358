{#- Cordial contact activities, one row per event of marts.customer_events for a person with a usable
    email, addressed by that email (the contacts sync creates the contact first). Properties are the columns
    after occurred_at (nulls left out); marketing triggers need consent, order facts always go. Cordial is
    not known to drop a repeated activity: the engine journals each before sending and never sends one of
    unknown fate twice. -#}

with events as (
    select * from {{ ref('customer_events') }}
),

customers as (
    select * from {{ ref('customers') }}
    where cordial_email is not null
),

lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
),

final as (
    select
        events.event_id,
        events.customer_key,
        customers.cordial_email as email,
        events.event_name,
        events.occurred_at,
        {{ event_marketing_allowed('events.event_name', 'lifecycle.email_marketing_consent') }} as marketing_allowed,
        events.order_id,
        cast(events.order_total as decimal(18, 2)) as order_total,
        events.discount_code,
        cast(events.refund_amount as decimal(18, 2)) as refund_amount,
        events.recovery_url,
        events.segment
    from events
    inner join customers
        on events.customer_key = customers.customer_key
    left join lifecycle
        on events.customer_key = lifecycle.customer_key
)

select * from final
