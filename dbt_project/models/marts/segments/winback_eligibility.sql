{#- Winback eligibility, one row per person; what Talon.One enforces at checkout and Customer.io targets.
    Entry: at least one valid order and the last one is older than var winback_window_days.
    Eligible from last order + window until winback_eligible_until = last order + window +
    var winback_offer_days: both derived from data, never from "now", so they only change when the
    person orders again. When not eligible, winback_eligible_until is the last order's time: in the
    past, and at or before the moment any eligibility ended (a purchase, an exclusion, the offer's end),
    so every destination reads "not eligible" from it, also one that cannot unset a value.
    Exit: a new order lands (the last order moves, so the person is no longer lapsed) or the offer
    window ends; also when an exclusion starts.
    Exclusions: suppressed (recent purchaser, unsubscribed, serial refunder), a recent discount
    redeemer (code redeemed within var winback_recent_redeemer_days), a discount abuser, the holdout.
    winback_exclusion_reason says why a person in the window is not eligible. -#}

with lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
    where {{ in_scope('customer_key') }}
),

suppressions as (
    select * from {{ ref('suppressions') }}
    where {{ in_scope('customer_key') }}
),

abusers as (
    select * from {{ ref('discount_abuse') }}
    where {{ in_scope('customer_key') }}
),

holdout as (
    select * from {{ ref('holdout_group') }}
    where {{ in_scope('customer_key') }}
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
),

windows as (
    select
        lifecycle.customer_key,
        lifecycle.most_recent_order_timestamp,
        {{ time_boundary('winback_window_start', 'lifecycle.most_recent_order_timestamp') }} as window_starts_at,
        {{ time_boundary('winback_offer_end', 'lifecycle.most_recent_order_timestamp') }} as window_ends_at,
        coalesce(
            {{ time_boundary('winback_recent_redeemer_end', 'lifecycle.last_promo_redeemed_at') }} > as_of.as_of,
            false
        ) as is_recent_redeemer,
        as_of.as_of
    from lifecycle
    cross join as_of
    where lifecycle.lifetime_count_orders >= 1
),

evaluated as (
    select
        windows.customer_key,
        windows.most_recent_order_timestamp,
        windows.window_starts_at,
        windows.window_ends_at,
        windows.window_starts_at <= windows.as_of as is_lapsed,
        windows.window_starts_at <= windows.as_of and windows.as_of < windows.window_ends_at as is_in_window,
        windows.is_recent_redeemer,
        case
            when suppressions.is_suppressed then 'suppressed_' || suppressions.suppression_reason
            when windows.is_recent_redeemer then 'recent_redeemer'
            when abusers.is_discount_abuser then 'discount_abuser'
            when holdout.is_holdout then 'holdout'
        end as exclusion_reason
    from windows
    inner join suppressions
        on windows.customer_key = suppressions.customer_key
    inner join abusers
        on windows.customer_key = abusers.customer_key
    inner join holdout
        on windows.customer_key = holdout.customer_key
),

final as (
    select
        customer_key,
        most_recent_order_timestamp,
        window_starts_at as winback_window_starts_at,
        window_ends_at as winback_window_ends_at,
        is_lapsed,
        is_in_window,
        is_recent_redeemer,
        is_in_window and exclusion_reason is null as winback_eligible,
        -- Never null for a buyer and never in the future unless eligible: a destination that cannot unset a
        -- time (Talon.One) is overwritten with the last order, at or before the moment eligibility ended.
        case when is_in_window and exclusion_reason is null then window_ends_at else most_recent_order_timestamp end
            as winback_eligible_until,
        case when is_in_window then exclusion_reason end as winback_exclusion_reason
    from evaluated
)

select * from final
