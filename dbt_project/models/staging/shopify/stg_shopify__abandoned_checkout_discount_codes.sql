with source as (
    {{ relay_source('shopify', 'abandoned_checkout_discount_code') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('shopify.abandoned_checkout_discount_code', ['_fivetran_synced']) }} as _relay_version_rank
    from source
)

select
    cast({{ clean_bigint('checkout_id') }} as {{ dbt.type_bigint() }}) as checkout_id,
    cast(coalesce({{ clean_bigint('index') }}, 0) as {{ dbt.type_int() }}) as code_index,
    upper({{ clean_text('code') }}) as code,
    cast(coalesce({{ clean_double('amount') }}, 0) as {{ dbt.type_numeric() }}) as amount,
    lower({{ clean_text('type') }}) as discount_type,
    {{ clean_timestamp('created_at') }} as created_at,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from versions
where {{ relay_is_latest_version('shopify.abandoned_checkout_discount_code') }}
    and {{ clean_text('code') }} is not null
