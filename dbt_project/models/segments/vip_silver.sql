{#- VIP tier silver by net lifetime value (marts/segments/vip_tiers). -#}

with segments as (
    select * from {{ ref('customer_segments') }}
),

final as (
    select
        customer_key
    from segments
    where vip_tier = 'silver'
)

select * from final
