{{ config(scope_delete=[['customer_key', 'key'], ["'shopify_order:' || cast(order_id as varchar)", 'record']]) }}

{#- One row per order (test orders included but flagged) with its person, discount codes and refunds.
    is_valid excludes test orders and cancelled or voided orders: only valid orders count in
    lifecycle metrics, LTV and segments. Any non-test order still ends a cart (the buyer checked out). -#}

with orders as (
    select * from {{ ref('stg_shopify__orders') }}
    -- Scoped: the orders `final` keeps (of a person in scope, or re-resolved), before the joins.
    where {{ in_scope_record_ids('order_id', 'shopify_order') }}
),

discount_codes as (
    select * from {{ ref('stg_shopify__order_discount_codes') }}
),

refunds as (
    select * from {{ ref('int_refunds_attributed') }}
),

records as (
    select * from {{ ref('int_identity_records_resolved') }}
    where record_type = 'shopify_order'
),

order_codes as (
    select
        order_id,
        count(distinct code) as discount_code_count,
        min(code) as first_discount_code
    from discount_codes
    group by order_id
),

order_refunds as (
    select
        order_id,
        count(*) as refund_count,
        sum(amount) as refunded_amount,
        min(refunded_at) as first_refunded_at
    from refunds
    group by order_id
),

joined as (
    select
        orders.order_id,
        records.customer_key,
        orders.customer_id as shopify_customer_id,
        orders.email,
        orders.created_at,
        orders.checkout_token,
        orders.total_price,
        orders.total_discounts,
        orders.is_test_order,
        orders.cancelled_at is not null or coalesce(orders.financial_status, '') = 'voided' as is_cancelled,
        coalesce(order_codes.discount_code_count, 0) as discount_code_count,
        order_codes.first_discount_code,
        coalesce(order_refunds.refund_count, 0) as refund_count,
        coalesce(order_refunds.refunded_amount, 0) as refunded_amount,
        order_refunds.first_refunded_at,
        -- Lower-cased street + postcode + country: the fingerprint of a shipping address.
        {{ shipping_address_key('orders') }} as shipping_address_key
    from orders
    left join records
        on cast(orders.order_id as {{ dbt.type_string() }}) = records.record_id
    left join order_codes
        on orders.order_id = order_codes.order_id
    left join order_refunds
        on orders.order_id = order_refunds.order_id
),

flagged as (
    select
        *,
        not is_test_order and not is_cancelled as is_valid,
        discount_code_count > 0 as has_discount_code,
        discount_code_count > 0 or total_discounts > 0 as is_discounted,
        refunded_amount > 0 as is_refunded
    from joined
),

final as (
    select
        *,
        case
            when is_valid and customer_key is not null then row_number() over (
                partition by customer_key, is_valid
                order by created_at, order_id
            )
        end as valid_order_number
    from flagged
    -- Scoped: all orders of the people in scope (order numbers count per person) and every order
    -- record re-resolved this run (it may now belong to nobody).
    where {{ in_scope('customer_key') }}
        or {{ in_scope("'shopify_order:' || cast(order_id as varchar)", 'record') }}
)

select * from final
