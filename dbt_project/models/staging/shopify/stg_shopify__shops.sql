with source as (
    {{ relay_source('shopify', 'shop') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('shopify.shop', ['_fivetran_synced']) }} as _relay_version_rank
    from source
)

select
    cast({{ clean_bigint('id') }} as {{ dbt.type_bigint() }}) as shop_id,
    {{ clean_text('name') }} as shop_name,
    lower({{ clean_text('domain') }}) as domain,
    upper({{ clean_text('currency') }}) as currency,
    {{ clean_text('iana_timezone') }} as iana_timezone,
    {{ clean_timestamp('created_at') }} as created_at,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from versions
where {{ relay_is_latest_version('shopify.shop') }}
    and {{ not_deleted() }}
