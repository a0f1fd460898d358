{#- The deterministic control group kept out of all activation (marts/segments/holdout_group). -#}

with segments as (
    select * from {{ ref('customer_segments') }}
),

final as (
    select
        customer_key
    from segments
    where is_holdout
)

select * from final
