with source as (
    {{ relay_source('shopify', 'refund') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('shopify.refund', ['_fivetran_synced']) }} as _relay_version_rank
    from source
)

select
    cast({{ clean_bigint('id') }} as {{ dbt.type_bigint() }}) as refund_id,
    cast({{ clean_bigint('order_id') }} as {{ dbt.type_bigint() }}) as order_id,
    {{ clean_timestamp('created_at') }} as created_at,
    {{ clean_timestamp('processed_at') }} as processed_at,
    {{ clean_text('note') }} as note,
    coalesce({{ clean_boolean('restock') }}, false) as is_restocked,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from versions
where {{ relay_is_latest_version('shopify.refund') }}
