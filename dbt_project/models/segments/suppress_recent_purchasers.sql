{#- Purchased within the recent-purchase suppression window: until it ends. -#}

with segments as (
    select * from {{ ref('customer_segments') }}
),

final as (
    select
        customer_key,
        recent_purchase_suppressed_until as member_until
    from segments
    where is_recent_purchaser
)

select * from final
