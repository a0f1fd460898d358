{#- Opted out of email marketing (Shopify or Salesforce). -#}

with segments as (
    select * from {{ ref('customer_segments') }}
),

final as (
    select
        customer_key
    from segments
    where is_unsubscribed
)

select * from final
