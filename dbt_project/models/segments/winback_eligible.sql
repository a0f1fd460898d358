{#- Lapsed past the winback window, within the offer period, and not excluded: until the offer period ends. -#}

with segments as (
    select * from {{ ref('customer_segments') }}
),

final as (
    select
        customer_key,
        winback_eligible_until as member_until
    from segments
    where winback_eligible
)

select * from final
