with source as (
    {{ relay_source('shopify', 'product') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('shopify.product', ['_fivetran_synced', 'updated_at']) }} as _relay_version_rank
    from source
)

select
    cast({{ clean_bigint('id') }} as {{ dbt.type_bigint() }}) as product_id,
    {{ clean_text('title') }} as title,
    lower({{ clean_text('handle') }}) as handle,
    -- Empty when unset (null here): the category then comes from the storefront's events.
    {{ clean_text('product_type') }} as product_type,
    {{ clean_text('vendor') }} as vendor,
    lower({{ clean_text('status') }}) as status,
    {{ clean_timestamp('created_at') }} as created_at,
    {{ clean_timestamp('updated_at') }} as updated_at,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from versions
where {{ relay_is_latest_version('shopify.product') }}
    and {{ not_deleted() }}
