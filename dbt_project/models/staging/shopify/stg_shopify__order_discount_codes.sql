with source as (
    {{ relay_source('shopify', 'order_discount_code') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('shopify.order_discount_code', ['_fivetran_synced']) }} as _relay_version_rank
    from source
)

select
    cast({{ clean_bigint('order_id') }} as {{ dbt.type_bigint() }}) as order_id,
    cast({{ clean_bigint('index') }} as {{ dbt.type_int() }}) as code_index,
    {{ clean_text('code') }} as code_raw,
    -- Codes are matched case-insensitively at checkout, so they are compared upper-cased.
    upper({{ clean_text('code') }}) as code,
    cast(coalesce({{ clean_double('amount') }}, 0) as {{ dbt.type_numeric() }}) as amount,
    lower({{ clean_text('type') }}) as discount_type,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from versions
where {{ relay_is_latest_version('shopify.order_discount_code') }}
    and {{ clean_text('code') }} is not null
