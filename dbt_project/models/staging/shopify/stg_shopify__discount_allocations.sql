with source as (
    {{ relay_source('shopify', 'discount_allocation') }}
)

select
    cast(order_line_id as {{ dbt.type_bigint() }}) as order_line_id,
    cast(index as {{ dbt.type_int() }}) as allocation_index,
    cast(amount as {{ dbt.type_numeric() }}) as amount,
    cast(discount_application_index as {{ dbt.type_int() }}) as discount_application_index,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from source
