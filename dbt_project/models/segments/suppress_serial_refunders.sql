{#- Refunds many of their orders. -#}

with segments as (
    select * from {{ ref('customer_segments') }}
),

final as (
    select
        customer_key
    from segments
    where is_serial_refunder
)

select * from final
