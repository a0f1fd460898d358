{#- Heavy redeemers, discount-dependent buyers, serial refunders and first-order-code rings (marts/segments/discount_abuse). -#}

with segments as (
    select * from {{ ref('customer_segments') }}
),

final as (
    select
        customer_key,
        discount_abuse_reason as reason
    from segments
    where is_discount_abuser
)

select * from final
