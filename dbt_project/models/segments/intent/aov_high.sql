{#- Average order value in the high band (aov_band_floors): for offers and creative that fit big baskets. -#}

with lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
),

final as (
    select customer_key
    from lifecycle
    where aov_band = 'high'
)

select * from final
