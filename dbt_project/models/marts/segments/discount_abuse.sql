{#- Guardrail segment, one row per person. A person is a discount abuser (entry) when any of:
      heavy_redemption  more than var abuse_max_redemptions_30d code redemptions in the last
                        var promo_window_days days;
      discount_dependent  at least var abuse_min_orders_for_share orders and a discount on at least
                        var abuse_min_discount_share of them;
      serial_refunder   at least var serial_refunder_min_refunded_orders refunded orders and a
                        refund rate of at least var serial_refunder_min_refund_rate;
      shared_ring       took a first-order code and shares an address or card with other accounts
                        that did too (int_discount_rings_detected).
    Exit: when none holds any more (redemptions age out of the window, more full-price orders).
    Abusers get incentive_tier 'none' and are never promo-eligible. -#}

with lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
    where {{ in_scope('customer_key') }}
),

rings as (
    select * from {{ ref('int_discount_rings_detected') }}
    where {{ in_scope('customer_key') }}
),

flagged as (
    select
        lifecycle.customer_key,
        lifecycle.promo_redemptions_30d,
        lifecycle.discount_order_share,
        lifecycle.lifetime_count_refunded_orders,
        lifecycle.refund_rate,
        coalesce(rings.largest_ring_size, 0) as largest_ring_size,
        lifecycle.promo_redemptions_30d > {{ var('abuse_max_redemptions_30d', 2) }} as is_heavy_redeemer,
        lifecycle.lifetime_count_orders >= {{ var('abuse_min_orders_for_share', 3) }}
            and lifecycle.discount_order_share >= {{ var('abuse_min_discount_share', 0.8) }} as is_discount_dependent,
        lifecycle.lifetime_count_refunded_orders >= {{ var('serial_refunder_min_refunded_orders', 2) }}
            and lifecycle.refund_rate >= {{ var('serial_refunder_min_refund_rate', 0.5) }} as is_serial_refunder,
        rings.customer_key is not null as is_ring_member
    from lifecycle
    left join rings
        on lifecycle.customer_key = rings.customer_key
),

final as (
    select
        *,
        is_heavy_redeemer or is_discount_dependent or is_serial_refunder or is_ring_member as is_discount_abuser,
        case
            when is_ring_member then 'shared_ring'
            when is_serial_refunder then 'serial_refunder'
            when is_heavy_redeemer then 'heavy_redemption'
            when is_discount_dependent then 'discount_dependent'
        end as discount_abuse_reason
    from flagged
)

select * from final
