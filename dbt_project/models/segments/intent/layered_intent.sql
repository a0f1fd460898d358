{#- Layered intent (AOV band + category affinity + recency): the layered_intent category is the person's
    top category with at least min_views views, they added to cart in the intent window, and their AOV
    band is one of aov_bands. Leaves when any layer stops holding (a purchase suppresses them first). -#}

{%- set layers = var('layered_intent') %}

with lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
),

final as (
    select
        customer_key,
        top_category || ', AOV ' || aov_band as reason
    from lifecycle
    where top_category = '{{ layers.category }}'
        and top_category_views >= {{ layers.min_views }}
        and recent_cart_adds >= 1
        and aov_band in ({% for band in layers.aov_bands %}'{{ band }}'{{ ', ' if not loop.last }}{% endfor %})
        and {{ relay_not_excluded('customer_key') }}
)

select * from final
