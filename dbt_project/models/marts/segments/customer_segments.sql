{#- Every segment decision for every person in one wide row (grain: customer_key), plus the single
    normalised incentive_tier that Talon.One maps to rewards:
      none  no orders yet (no discount on a first purchase), or suppressed, held out, or a discount abuser;
      A     lapsed (last order older than var winback_window_days), net LTV at least
            var incentive_tier_a_min_net_ltv, discount share below var incentive_max_discount_share,
            no recent code redemption: the strongest incentive;
      B     lapsed, discount share below that cap, no recent redemption: the standard incentive;
      C     everyone else with orders (recent buyers, discount-leaning or recent redeemers): perks only.
    is_promo_eligible = may receive a discount: winback-eligible or incentive_tier <> none; never true
    for suppressed, held-out or abusive people. Abusers may still be in a cart window (a full-price
    reminder); suppressed and held-out people never are. -#}

with customers as (
    select * from {{ ref('customers') }}
    where {{ in_scope('customer_key') }}
),

lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
    where {{ in_scope('customer_key') }}
),

vip as (
    select * from {{ ref('vip_tiers') }}
    where {{ in_scope('customer_key') }}
),

winback as (
    select * from {{ ref('winback_eligibility') }}
    where {{ in_scope('customer_key') }}
),

carts as (
    select * from {{ ref('cart_abandonments') }}
    where {{ in_scope('customer_key') }}
),

abusers as (
    select * from {{ ref('discount_abuse') }}
    where {{ in_scope('customer_key') }}
),

suppressions as (
    select * from {{ ref('suppressions') }}
    where {{ in_scope('customer_key') }}
),

holdout as (
    select * from {{ ref('holdout_group') }}
    where {{ in_scope('customer_key') }}
),

joined as (
    select
        customers.customer_key,
        lifecycle.lifecycle_stage,
        lifecycle.lifetime_count_orders,
        lifecycle.discount_order_share,
        vip.lifetime_total_net,
        vip.vip_tier,
        coalesce(winback.winback_eligible, false) as winback_eligible,
        winback.winback_eligible_until,
        winback.winback_exclusion_reason,
        coalesce(winback.is_lapsed, false) as is_lapsed,
        coalesce(winback.is_recent_redeemer, false) as is_recent_redeemer,
        carts.cart_stage,
        carts.cart_window,
        carts.cart_abandoned_at,
        carts.checkout_token as cart_checkout_token,
        carts.recovery_url as cart_recovery_url,
        carts.cart_exclusion_reason,
        abusers.is_discount_abuser,
        abusers.discount_abuse_reason,
        suppressions.is_suppressed,
        suppressions.is_recent_purchaser,
        suppressions.recent_purchase_suppressed_until,
        suppressions.is_unsubscribed,
        suppressions.is_serial_refunder,
        suppressions.suppression_reason,
        holdout.is_holdout
    from customers
    inner join lifecycle
        on customers.customer_key = lifecycle.customer_key
    inner join vip
        on customers.customer_key = vip.customer_key
    inner join abusers
        on customers.customer_key = abusers.customer_key
    inner join suppressions
        on customers.customer_key = suppressions.customer_key
    inner join holdout
        on customers.customer_key = holdout.customer_key
    left join winback
        on customers.customer_key = winback.customer_key
    left join carts
        on customers.customer_key = carts.customer_key
),

tiered as (
    select
        *,
        case
            when lifetime_count_orders = 0 then 'none'
            when is_suppressed or is_holdout or is_discount_abuser then 'none'
            when is_lapsed
                and not is_recent_redeemer
                and discount_order_share < {{ var('incentive_max_discount_share', 0.5) }}
                and lifetime_total_net >= {{ var('incentive_tier_a_min_net_ltv', 500) }}
                then 'A'
            when is_lapsed
                and not is_recent_redeemer
                and discount_order_share < {{ var('incentive_max_discount_share', 0.5) }}
                then 'B'
            else 'C'
        end as incentive_tier
    from joined
),

final as (
    select
        customer_key,
        lifecycle_stage,
        vip_tier,
        incentive_tier,
        winback_eligible,
        winback_eligible_until,
        winback_exclusion_reason,
        cart_stage,
        cart_window,
        cart_abandoned_at,
        cart_checkout_token,
        cart_recovery_url,
        cart_exclusion_reason,
        is_discount_abuser,
        discount_abuse_reason,
        is_suppressed,
        is_recent_purchaser,
        recent_purchase_suppressed_until,
        is_unsubscribed,
        is_serial_refunder,
        suppression_reason,
        is_holdout,
        winback_eligible or incentive_tier != 'none' as is_promo_eligible
    from tiered
)

select * from final
