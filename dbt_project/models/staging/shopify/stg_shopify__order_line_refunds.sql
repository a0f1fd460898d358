with source as (
    {{ relay_source('shopify', 'order_line_refund') }}
)

select
    cast(id as {{ dbt.type_bigint() }}) as order_line_refund_id,
    cast(refund_id as {{ dbt.type_bigint() }}) as refund_id,
    cast(order_line_id as {{ dbt.type_bigint() }}) as order_line_id,
    cast(quantity as {{ dbt.type_int() }}) as quantity,
    cast(subtotal as {{ dbt.type_numeric() }}) as subtotal,
    cast(coalesce(total_tax, 0) as {{ dbt.type_numeric() }}) as total_tax,
    lower({{ clean_text('restock_type') }}) as restock_type,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from source
