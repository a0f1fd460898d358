{#- Cart abandonment, one row per person who started a checkout: their latest checkout and where it
    stands at the as-of time.
    Entry: a checkout started (Shopify abandoned_checkout or a Segment "Checkout Started" event) with
    no purchase at or after it by the same person (matched by checkout token, Shopify's completed_at,
    or any order / "Order Completed" event of the stitched person).
    Grace: for the first var cart_grace_minutes the cart is 'grace', not yet in a window, so an order
    event arriving late does not send a recovery message to a buyer.
    Windows: '0-4h' until var cart_short_window_hours after the start, then '4-24h' until
    var cart_long_window_hours; after that 'expired' (exit). A purchase exits at once.
    Exclusions: suppressed people (recent purchasers, unsubscribed, serial refunders) and the holdout
    have cart_stage but no cart_window. -#}

with checkouts as (
    select * from {{ ref('int_checkouts_started') }}
    where customer_key is not null
        and {{ in_scope('customer_key') }}
),

suppressions as (
    select * from {{ ref('suppressions') }}
    where {{ in_scope('customer_key') }}
),

holdout as (
    select * from {{ ref('holdout_group') }}
    where {{ in_scope('customer_key') }}
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
),

latest_checkouts as (
    select
        checkouts.*,
        row_number() over (
            partition by checkouts.customer_key
            order by checkouts.started_at desc, checkouts.checkout_token desc
        ) as recency_rank
    from checkouts
    cross join as_of
    where checkouts.started_at <= as_of.as_of
),

staged as (
    select
        latest_checkouts.customer_key,
        latest_checkouts.checkout_token,
        latest_checkouts.started_at,
        latest_checkouts.recovery_url,
        latest_checkouts.total_price,
        latest_checkouts.converted_at,
        case
            when latest_checkouts.converted_at <= as_of.as_of then 'converted'
            when {{ time_boundary('cart_grace_end', 'latest_checkouts.started_at') }} > as_of.as_of then 'grace'
            when {{ time_boundary('cart_short_window_end', 'latest_checkouts.started_at') }} > as_of.as_of then '0-4h'
            when {{ time_boundary('cart_long_window_end', 'latest_checkouts.started_at') }} > as_of.as_of then '4-24h'
            else 'expired'
        end as cart_stage
    from latest_checkouts
    cross join as_of
    where latest_checkouts.recency_rank = 1
),

final as (
    select
        staged.customer_key,
        staged.checkout_token,
        staged.started_at as checkout_started_at,
        staged.recovery_url,
        staged.total_price as checkout_total_price,
        staged.converted_at,
        staged.cart_stage,
        case when staged.cart_stage in ('0-4h', '4-24h') then staged.started_at end as cart_abandoned_at,
        case
            when staged.cart_stage in ('0-4h', '4-24h')
                and not suppressions.is_suppressed
                and not holdout.is_holdout
                then staged.cart_stage
        end as cart_window,
        case
            when staged.cart_stage in ('0-4h', '4-24h') and suppressions.is_suppressed
                then 'suppressed_' || suppressions.suppression_reason
            when staged.cart_stage in ('0-4h', '4-24h') and holdout.is_holdout
                then 'holdout'
        end as cart_exclusion_reason
    from staged
    inner join suppressions
        on staged.customer_key = suppressions.customer_key
    inner join holdout
        on staged.customer_key = holdout.customer_key
)

select * from final
