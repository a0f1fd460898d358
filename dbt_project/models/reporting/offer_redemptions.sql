{#- Every valid order that redeemed an offer's code (relay_offers.<offer>.codes), and whether the person
    could: in the offer's window at that moment (winback: the previous valid order at least
    winback_window_days and less than winback_window_days + winback_offer_days before; cart: within a cart
    window of int_offer_windows), not held out and not a discount abuser. leaked_because says why one that
    could not did anyway: outside_window (a code used outside the offer: shared, or passed on), holdout,
    discount_abuser. Talon.One refuses such a redemption at checkout once eligibility is enforced there:
    this is what slipped through before, or elsewhere. Abuse and holdout are as of this build. -#}

{%- set offers = var('relay_offers') %}

with orders as (
    select * from {{ ref('int_offer_orders') }}
),

codes as (
    select
        codes.order_id,
        offers.offer,
        codes.code,
        sum(codes.amount) as discount
    from {{ ref('stg_shopify__order_discount_codes') }} as codes
    inner join (
        {%- for name, offer in offers.items() %}
        {%- for code in offer.codes %}
        select '{{ name }}' as offer, '{{ code }}' as code
        {{ 'union all' if not loop.last }}
        {%- endfor %}
        {{ 'union all' if not loop.last }}
        {%- endfor %}
    ) as offers
        on codes.code = offers.code
    group by 1, 2, 3
),

cart_windows as (
    select customer_key, entered_at, window_ends_at
    from {{ ref('int_offer_windows') }}
    where offer = 'cart'
),

redeemed as (
    select
        codes.offer,
        orders.customer_key,
        orders.order_id,
        orders.created_at as redeemed_at,
        codes.code,
        codes.discount,
        orders.total_price,
        case codes.offer
            when 'winback' then coalesce(
                orders.created_at >= {{ time_boundary('winback_window_start', 'orders.previous_order_at') }}
                and orders.created_at < {{ time_boundary('winback_offer_end', 'orders.previous_order_at') }},
                false)
            else exists (
                select 1 from cart_windows
                where cart_windows.customer_key = orders.customer_key
                    and orders.created_at >= cart_windows.entered_at
                    and orders.created_at < cart_windows.window_ends_at)
        end as in_window
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
