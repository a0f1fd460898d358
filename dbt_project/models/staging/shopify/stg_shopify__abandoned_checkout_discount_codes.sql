with source as (
    {{ relay_source('shopify', 'abandoned_checkout_discount_code') }}
)

select
    cast(checkout_id as {{ dbt.type_bigint() }}) as checkout_id,
    cast(coalesce(index, 0) as {{ dbt.type_int() }}) as code_index,
    upper({{ clean_text('code') }}) as code,
    cast(coalesce(amount, 0) as {{ dbt.type_numeric() }}) as amount,
    lower({{ clean_text('type') }}) as discount_type,
    {{ clean_timestamp('created_at') }} as created_at,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from source
where {{ clean_text('code') }} is not null
