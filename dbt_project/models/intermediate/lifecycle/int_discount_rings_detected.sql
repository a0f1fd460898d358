{#- Accounts that look like one buyer farming first-order codes: customers who each took a discount
    code on their first order and share a shipping address or a payment card with at least
    var abuse_ring_min_accounts - 1 other such customers. Address fingerprint = lower-cased street +
    postcode + country; card fingerprint = BIN + last four digits. These are deliberately NOT identity
    links (different accounts stay different people); they only feed the discount_abusers segment (marts.discount_abuse). -#}

with all_orders as (
    select * from {{ ref('int_orders_attributed') }}
    where is_valid
        and customer_key is not null
),

transactions as (
    select * from {{ ref('stg_shopify__transactions') }}
),

first_code_takers as (
    select distinct customer_key
    from all_orders
    where valid_order_number = 1
        and has_discount_code
),

-- Scoped: the orders of the people in scope, and every order sharing an address or card with them
-- (a ring's size counts accounts out of scope too).
scope_orders as (
    select order_id, shipping_address_key
    from all_orders
    where {{ in_scope('customer_key') }}
),

scope_cards as (
    select distinct card_bin || '-' || card_last4 as card
    from transactions
    where order_id in (select order_id from scope_orders)
),

orders as (
    select *
    from all_orders
    {%- if relay_scoped() %}
    where order_id in (select order_id from scope_orders)
        or shipping_address_key in (select shipping_address_key from scope_orders)
        or order_id in (
            select order_id from transactions
            where card_bin || '-' || card_last4 in (select card from scope_cards)
        )
    {%- endif %}
),

fingerprints as (
    select distinct
        orders.customer_key,
        'address' as fingerprint_kind,
        orders.shipping_address_key as fingerprint
    from orders
    inner join first_code_takers
        on orders.customer_key = first_code_takers.customer_key
    where orders.shipping_address_key is not null

    union all

    select distinct
        orders.customer_key,
        'card' as fingerprint_kind,
        transactions.card_bin || '-' || transactions.card_last4 as fingerprint
    from transactions
    inner join orders
        on transactions.order_id = orders.order_id
    inner join first_code_takers
        on orders.customer_key = first_code_takers.customer_key
    where transactions.kind in ('sale', 'authorization', 'capture')
        and transactions.card_bin is not null
        and transactions.card_last4 is not null
),

rings as (
    select
        fingerprint_kind,
        fingerprint,
        count(distinct customer_key) as ring_size
    from fingerprints
    group by
        fingerprint_kind,
        fingerprint
    having count(distinct customer_key) >= {{ var('abuse_ring_min_accounts', 2) }}
),

final as (
    select
        fingerprints.customer_key,
        max(rings.ring_size) as largest_ring_size,
        count(case when rings.fingerprint_kind = 'address' then 1 end) as shared_address_count,
        count(case when rings.fingerprint_kind = 'card' then 1 end) as shared_card_count
    from fingerprints
    inner join rings
        on fingerprints.fingerprint_kind = rings.fingerprint_kind
        and fingerprints.fingerprint = rings.fingerprint
    where {{ in_scope('fingerprints.customer_key') }}
    group by fingerprints.customer_key
)

select * from final
