with source as (
    {{ relay_source('shopify', 'shop') }}
)

select
    cast(id as {{ dbt.type_bigint() }}) as shop_id,
    {{ clean_text('name') }} as shop_name,
    lower({{ clean_text('domain') }}) as domain,
    upper({{ clean_text('currency') }}) as currency,
    {{ clean_text('iana_timezone') }} as iana_timezone,
    {{ clean_timestamp('created_at') }} as created_at,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from source
where {{ not_deleted() }}
