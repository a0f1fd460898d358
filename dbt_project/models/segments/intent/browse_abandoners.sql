{#- Viewed products at least browse_min_views times in the intent window without adding any to the cart
    or ordering in that window. Leaves on a cart add or a purchase, or when the window passes the views. -#}

with lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

final as (
    select
        lifecycle.customer_key,
        lifecycle.top_category as reason
    from lifecycle
    cross join as_of
    where lifecycle.recent_product_views >= {{ var('browse_min_views') }}
        and lifecycle.recent_cart_adds = 0
        and (
            lifecycle.most_recent_order_timestamp is null
            or {{ dbt.dateadd('day', var('intent_window_days'), 'lifecycle.most_recent_order_timestamp') }} <= as_of.as_of
        )
        and {{ relay_not_excluded('lifecycle.customer_key') }}
)

select * from final
