with source as (
    {{ relay_source('shopify', 'order_line') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('shopify.order_line', ['_fivetran_synced']) }} as _relay_version_rank
    from source
)

select
    cast({{ clean_bigint('id') }} as {{ dbt.type_bigint() }}) as order_line_id,
    cast({{ clean_bigint('order_id') }} as {{ dbt.type_bigint() }}) as order_id,
    cast({{ clean_bigint('index') }} as {{ dbt.type_int() }}) as line_index,
    cast({{ clean_bigint('product_id') }} as {{ dbt.type_bigint() }}) as product_id,
    cast({{ clean_bigint('variant_id') }} as {{ dbt.type_bigint() }}) as variant_id,
    {{ clean_text('sku') }} as sku,
    {{ clean_text('title') }} as title,
    {{ clean_text('vendor') }} as vendor,
    cast({{ clean_bigint('quantity') }} as {{ dbt.type_int() }}) as quantity,
    cast({{ clean_double('price') }} as {{ dbt.type_numeric() }}) as price,
    cast(coalesce({{ clean_double('total_discount') }}, 0) as {{ dbt.type_numeric() }}) as total_discount,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from versions
where {{ relay_is_latest_version('shopify.order_line') }}
