{#- Browsed or added to cart at least intent_min_actions times in the intent window, and has not
    purchased in intent_no_purchase_days (or never has). Leaves on a purchase, or when the intent window
    passes the actions (a time boundary of customer_lifecycle). -#}

with lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

final as (
    select
        lifecycle.customer_key,
        cast(lifecycle.recent_product_views as {{ dbt.type_string() }}) || ' views, '
            || cast(lifecycle.recent_cart_adds as {{ dbt.type_string() }}) || ' cart adds' as reason
    from lifecycle
    cross join as_of
    where lifecycle.recent_product_views + lifecycle.recent_cart_adds >= {{ var('intent_min_actions') }}
        and (
            lifecycle.most_recent_order_timestamp is null
            or {{ dbt.dateadd('day', var('intent_no_purchase_days'), 'lifecycle.most_recent_order_timestamp') }} <= as_of.as_of
        )
        and {{ relay_not_excluded('lifecycle.customer_key') }}
)

select * from final
