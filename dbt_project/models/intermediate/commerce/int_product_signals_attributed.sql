{#- One row per product signal of a person: a line of a valid order, a Product Added or a Product Viewed
    event, with the product's category. The category is the product's product_type (shopify.product)
    when set, else the category the storefront sent on the event (for an order line: on the person's own
    latest event for that product). Signals of nobody (unattributed orders, unidentified devices) are left
    out. Not clock-dependent: customer_lifecycle applies the windows at the as-of time.
    Scoped runs (macros/scope/) recompute the signals of the people in scope. -#}

with orders as (
    select * from {{ ref('int_orders_attributed') }}
    where {{ in_scope('customer_key') }}
        and customer_key is not null
        and is_valid
),

order_lines as (
    select * from {{ ref('stg_shopify__order_lines') }}
),

events as (
    select * from {{ ref('int_events_attributed') }}
    where {{ in_scope('customer_key') }}
        and customer_key is not null
        and event_name in ('Product Viewed', 'Product Added')
),

products as (
    select * from {{ ref('stg_shopify__products') }}
),

-- The category the storefront last sent for each product a person interacted with.
event_categories as (
    select
        customer_key,
        product_id,
        category
    from events
    where product_id is not null
        and category is not null
    qualify row_number() over (
        partition by customer_key, product_id
        order by occurred_at desc, event_id desc
    ) = 1
),

line_signals as (
    select
        'order_line:' || cast(order_lines.order_line_id as {{ dbt.type_string() }}) as signal_id,
        orders.customer_key,
        'order_line' as signal_type,
        orders.created_at as occurred_at,
        orders.order_id,
        cast(order_lines.product_id as {{ dbt.type_string() }}) as product_id,
        coalesce(products.product_type, event_categories.category) as category
    from orders
    inner join order_lines
        on orders.order_id = order_lines.order_id
    left join products
        on order_lines.product_id = products.product_id
    left join event_categories
        on orders.customer_key = event_categories.customer_key
        and cast(order_lines.product_id as {{ dbt.type_string() }}) = event_categories.product_id
),

event_signals as (
    select
        'segment_track:' || events.event_id as signal_id,
        events.customer_key,
        case events.event_name when 'Product Added' then 'product_added' else 'product_viewed' end as signal_type,
        events.occurred_at,
        cast(null as {{ dbt.type_bigint() }}) as order_id,
        events.product_id,
        coalesce(products.product_type, events.category) as category
    from events
    left join products
        on events.product_id = cast(products.product_id as {{ dbt.type_string() }})
),

final as (
    select * from line_signals
    union all
    select * from event_signals
)

select * from final
