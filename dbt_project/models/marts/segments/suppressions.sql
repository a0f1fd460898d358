{#- Suppression flags, one row per person. Suppressed people stay synced as people (with these flags)
    but are kept out of every promotional audience (winback, cart windows, incentive tiers).
      recent_purchaser  last valid order within var suppress_recent_purchase_days days; exits at
                        recent_purchase_suppressed_until (last order + that many days);
      unsubscribed      email consent is unsubscribed (int_consents_resolved precedence);
      serial_refunder   see discount_abuse.
    suppression_reason names the first that applies, in that order. -#}

with lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
    where {{ in_scope('customer_key') }}
),

abusers as (
    select * from {{ ref('discount_abuse') }}
    where {{ in_scope('customer_key') }}
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
),

flagged as (
    select
        lifecycle.customer_key,
        {{ time_boundary('recent_purchase_suppression_end', 'lifecycle.most_recent_order_timestamp') }} as recent_purchase_suppressed_until,
        coalesce(
            {{ time_boundary('recent_purchase_suppression_end', 'lifecycle.most_recent_order_timestamp') }} > as_of.as_of,
            false
        ) as is_recent_purchaser,
        lifecycle.is_email_unsubscribed as is_unsubscribed,
        abusers.is_serial_refunder
    from lifecycle
    cross join as_of
    inner join abusers
        on lifecycle.customer_key = abusers.customer_key
),

final as (
    select
        customer_key,
        is_recent_purchaser,
        case when is_recent_purchaser then recent_purchase_suppressed_until end as recent_purchase_suppressed_until,
        is_unsubscribed,
        is_serial_refunder,
        is_recent_purchaser or is_unsubscribed or is_serial_refunder as is_suppressed,
        case
            when is_recent_purchaser then 'recent_purchaser'
            when is_unsubscribed then 'unsubscribed'
            when is_serial_refunder then 'serial_refunder'
        end as suppression_reason
    from flagged
)

select * from final
