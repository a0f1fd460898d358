with source as (
    {{ relay_source('shopify', 'refund') }}
)

select
    cast(id as {{ dbt.type_bigint() }}) as refund_id,
    cast(order_id as {{ dbt.type_bigint() }}) as order_id,
    {{ clean_timestamp('created_at') }} as created_at,
    {{ clean_timestamp('processed_at') }} as processed_at,
    {{ clean_text('note') }} as note,
    coalesce(restock, false) as is_restocked,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from source
