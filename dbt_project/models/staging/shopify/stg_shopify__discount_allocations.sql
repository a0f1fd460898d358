with source as (
    {{ relay_source('shopify', 'discount_allocation') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('shopify.discount_allocation', ['_fivetran_synced']) }} as _relay_version_rank
    from source
)

select
    cast({{ clean_bigint('order_line_id') }} as {{ dbt.type_bigint() }}) as order_line_id,
    cast({{ clean_bigint('index') }} as {{ dbt.type_int() }}) as allocation_index,
    cast({{ clean_double('amount') }} as {{ dbt.type_numeric() }}) as amount,
    cast({{ clean_bigint('discount_application_index') }} as {{ dbt.type_int() }}) as discount_application_index,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from versions
where {{ relay_is_latest_version('shopify.discount_allocation') }}
