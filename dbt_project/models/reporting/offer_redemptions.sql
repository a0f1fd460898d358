{#- Every valid order that redeemed an offer's code (relay_offers.<offer>.codes), and whether the person
    could: in the offer's window at that moment (winback: the previous valid order at least
    winback_window_days and less than winback_window_days + winback_offer_days before), not held out and
    not a discount abuser. leaked_because says why one that could not did anyway: outside_window (a code
    used before lapsing or after the offer ended: shared, or passed on), holdout, discount_abuser. Talon.One
    refuses such a redemption at checkout once eligibility is enforced there: this is what slipped through
    before, or elsewhere. Abuse and holdout are as of this build. -#}

{%- set offers = var('relay_offers') %}

with orders as (
    select * from {{ ref('int_offer_orders') }}
),

codes as (
    select
        order_id,
        code,
        sum(amount) as discount
    from {{ ref('stg_shopify__order_discount_codes') }}
    where code in ({% for code in offers['winback']['codes'] %}'{{ code }}'{{ ', ' if not loop.last }}{% endfor %})
    group by 1, 2
),

redeemed as (
    select
        'winback' as offer,
        orders.customer_key,
        orders.order_id,
        orders.created_at as redeemed_at,
        codes.code,
        codes.discount,
        orders.total_price,
        coalesce(
            orders.created_at >= {{ time_boundary('winback_window_start', 'orders.previous_order_at') }}
            and orders.created_at < {{ time_boundary('winback_offer_end', 'orders.previous_order_at') }},
            false
        ) as in_window
    from orders
    inner join codes
        on orders.order_id = codes.order_id
),

final as (
    select
        redeemed.*,
        holdout.is_holdout,
        abuse.is_discount_abuser,
        case
            when not redeemed.in_window then 'outside_window'
            when holdout.is_holdout then 'holdout'
            when abuse.is_discount_abuser then 'discount_abuser'
        end as leaked_because
    from redeemed
    inner join {{ ref('holdout_group') }} as holdout
        on redeemed.customer_key = holdout.customer_key
    inner join {{ ref('discount_abuse') }} as abuse
        on redeemed.customer_key = abuse.customer_key
)

select * from final
