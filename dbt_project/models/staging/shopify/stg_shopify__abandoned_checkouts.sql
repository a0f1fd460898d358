with source as (
    {{ relay_source('shopify', 'abandoned_checkout') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('shopify.abandoned_checkout', ['_fivetran_synced', 'updated_at']) }} as _relay_version_rank
    from source
)

select
    cast({{ clean_bigint('id') }} as {{ dbt.type_bigint() }}) as checkout_id,
    {{ clean_text('token') }} as checkout_token,
    {{ clean_text('cart_token') }} as cart_token,
    {{ normalize_email('email') }} as email,
    -- A digest landed in place of the address: an identity link, never a contact (macros/cleaning.sql).
    {{ hashed_email('email') }} as email_hash,
    {{ valid_e164(normalize_phone('phone')) }} as phone,
    cast({{ clean_bigint('customer_id') }} as {{ dbt.type_bigint() }}) as customer_id,
    {{ clean_timestamp('created_at') }} as created_at,
    {{ clean_timestamp('updated_at') }} as updated_at,
    {{ clean_timestamp('completed_at') }} as completed_at,
    {{ clean_timestamp('closed_at') }} as closed_at,
    {{ clean_text('abandoned_checkout_url') }} as recovery_url,
    cast({{ clean_double('total_price') }} as {{ dbt.type_numeric() }}) as total_price,
    cast({{ clean_double('subtotal_price') }} as {{ dbt.type_numeric() }}) as subtotal_price,
    cast(coalesce({{ clean_double('total_discounts') }}, 0) as {{ dbt.type_numeric() }}) as total_discounts,
    upper({{ clean_text('currency') }}) as currency,
    {{ clean_boolean('buyer_accepts_marketing') }} as buyer_accepts_marketing,
    {{ clean_text('shipping_address_address_1') }} as shipping_address_1,
    {{ clean_text('shipping_address_zip') }} as shipping_zip,
    upper({{ clean_text('shipping_address_country_code') }}) as shipping_country_code,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from versions
where {{ relay_is_latest_version('shopify.abandoned_checkout') }}
    and {{ not_deleted() }}
    -- A checkout stamped after the loader wrote it has not happened yet; it would move the clock.
    and not {{ relay_is_future_dated('created_at') }}
