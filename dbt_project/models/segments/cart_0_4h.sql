{#- Abandoned a checkout 30 min to 4 h ago (after the grace delay) and has not purchased since. -#}

with segments as (
    select * from {{ ref('customer_segments') }}
),

final as (
    select
        customer_key,
        {{ time_boundary('cart_short_window_end', 'cart_abandoned_at') }} as member_until
    from segments
    where cart_window = '0-4h'
)

select * from final
