with source as (
    {{ relay_source('shopify', 'customer_tag') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('shopify.customer_tag', ['_fivetran_synced']) }} as _relay_version_rank
    from source
)

select
    cast({{ clean_bigint('customer_id') }} as {{ dbt.type_bigint() }}) as customer_id,
    cast(coalesce({{ clean_bigint('index') }}, 0) as {{ dbt.type_int() }}) as tag_index,
    {{ clean_text('value') }} as tag,
    lower({{ clean_text('value') }}) as tag_normalized,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from versions
where {{ relay_is_latest_version('shopify.customer_tag') }}
    and {{ clean_text('value') }} is not null
