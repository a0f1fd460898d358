with source as (
    {{ relay_source('shopify', 'order_line_refund') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('shopify.order_line_refund', ['_fivetran_synced']) }} as _relay_version_rank
    from source
)

select
    cast({{ clean_bigint('id') }} as {{ dbt.type_bigint() }}) as order_line_refund_id,
    cast({{ clean_bigint('refund_id') }} as {{ dbt.type_bigint() }}) as refund_id,
    cast({{ clean_bigint('order_line_id') }} as {{ dbt.type_bigint() }}) as order_line_id,
    cast({{ clean_bigint('quantity') }} as {{ dbt.type_int() }}) as quantity,
    cast({{ clean_double('subtotal') }} as {{ dbt.type_numeric() }}) as subtotal,
    cast(coalesce({{ clean_double('total_tax') }}, 0) as {{ dbt.type_numeric() }}) as total_tax,
    lower({{ clean_text('restock_type') }}) as restock_type,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from versions
where {{ relay_is_latest_version('shopify.order_line_refund') }}
