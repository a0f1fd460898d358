{#- Abandoned a checkout 4 to 24 h ago and has not purchased since. -#}

with segments as (
    select * from {{ ref('customer_segments') }}
),

final as (
    select
        customer_key,
        {{ time_boundary('cart_long_window_end', 'cart_abandoned_at') }} as member_until
    from segments
    where cart_window = '4-24h'
)

select * from final
