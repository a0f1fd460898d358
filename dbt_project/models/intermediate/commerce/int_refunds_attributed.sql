{{ config(scope_delete=[['customer_key', 'key'], ["'shopify_order:' || cast(order_id as varchar)", 'record']]) }}

{#- One row per refund of a known order, with its amount and the person it belongs to.
    Amount = refunded line subtotals + tax; a refund without refunded lines (shipping, goodwill)
    falls back to its successful refund transactions. Refunds of orders that never landed are dropped
    (nothing to attribute them to). -#}

with refunds as (
    select * from {{ ref('stg_shopify__refunds') }}
    -- Scoped: the refunds `final` keeps (of an order of a person in scope, or re-resolved), before the joins.
    where {{ in_scope_record_ids('order_id', 'shopify_order') }}
),

line_refunds as (
    select * from {{ ref('stg_shopify__order_line_refunds') }}
),

transactions as (
    select * from {{ ref('stg_shopify__transactions') }}
),

orders as (
    select * from {{ ref('stg_shopify__orders') }}
),

records as (
    select * from {{ ref('int_identity_records_resolved') }}
    where record_type = 'shopify_order'
),

line_amounts as (
    select
        refund_id,
        sum(coalesce(subtotal, 0) + coalesce(total_tax, 0)) as amount
    from line_refunds
    group by refund_id
),

transaction_amounts as (
    select
        refund_id,
        sum(amount) as amount
    from transactions
    where kind = 'refund'
        and status = 'success'
        and not is_test
        and refund_id is not null
    group by refund_id
),

final as (
    select
        refunds.refund_id,
        refunds.order_id,
        records.customer_key,
        coalesce(refunds.processed_at, refunds.created_at) as refunded_at,
        cast(coalesce(line_amounts.amount, transaction_amounts.amount, 0) as {{ dbt.type_numeric() }}) as amount
    from refunds
    inner join orders
        on refunds.order_id = orders.order_id
    left join records
        on cast(refunds.order_id as {{ dbt.type_string() }}) = records.record_id
    left join line_amounts
        on refunds.refund_id = line_amounts.refund_id
    left join transaction_amounts
        on refunds.refund_id = transaction_amounts.refund_id
    where {{ in_scope('records.customer_key') }}
        or {{ in_scope("'shopify_order:' || cast(refunds.order_id as varchar)", 'record') }}
)

select * from final
