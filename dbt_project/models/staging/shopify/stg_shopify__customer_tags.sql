with source as (
    {{ relay_source('shopify', 'customer_tag') }}
)

select
    cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
    cast(coalesce(index, 0) as {{ dbt.type_int() }}) as tag_index,
    {{ clean_text('value') }} as tag,
    lower({{ clean_text('value') }}) as tag_normalized,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from source
where {{ clean_text('value') }} is not null
