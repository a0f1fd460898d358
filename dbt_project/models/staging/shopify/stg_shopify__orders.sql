{{ config(scope_delete=[['order_id', 'changed:shopify_order']]) }}

{#- A table, not a view: a scoped run (macros/scope/) re-stages only the keys the loaders changed
    (every raw version of them, so deduplication picks what a full rebuild would), and the models
    downstream read the stored rows of the rest instead of re-deduplicating the whole raw table. -#}
-- depends_on: {{ ref('int_scope_changed_records') }}

with source as (
    {{ relay_source('shopify', 'order') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('shopify.order', ['_fivetran_synced', 'updated_at']) }} as _relay_version_rank
    from source
    {%- if is_incremental() %}
    where {{ in_changed('cast(' ~ clean_bigint('id') ~ ' as ' ~ dbt.type_bigint() ~ ')', 'shopify_order', 'bigint') }}
    {%- endif %}
),

cleaned as (
    select
        cast({{ clean_bigint('id') }} as {{ dbt.type_bigint() }}) as order_id,
        {{ clean_text('name') }} as order_name,
        cast({{ clean_bigint('customer_id') }} as {{ dbt.type_bigint() }}) as customer_id,
        {{ normalize_email('email') }} as email,
        -- A digest landed in place of the address: an identity link, never a contact (macros/cleaning.sql).
        {{ hashed_email('email') }} as email_hash,
        {{ valid_e164(normalize_phone('coalesce(' ~ clean_text('phone') ~ ', ' ~ clean_text('billing_address_phone') ~ ')')) }} as phone,
        {{ clean_timestamp('created_at') }} as created_at,
        {{ clean_timestamp('processed_at') }} as processed_at,
        {{ clean_timestamp('updated_at') }} as updated_at,
        {{ clean_timestamp('cancelled_at') }} as cancelled_at,
        lower({{ clean_text('cancel_reason') }}) as cancel_reason,
        lower({{ clean_text('financial_status') }}) as financial_status,
        lower({{ clean_text('fulfillment_status') }}) as fulfillment_status,
        upper({{ clean_text('currency') }}) as currency,
        -- A stored table materializes every value: an amount that cannot be a number (NaN, out of range) is
        -- null here instead of failing the model; assert_raw_amounts_are_plausible fails the build naming it.
        {{ relay_try_cast(clean_double('total_price'), dbt.type_numeric()) }} as total_price,
        {{ relay_try_cast(clean_double('subtotal_price'), dbt.type_numeric()) }} as subtotal_price,
        {{ relay_try_cast('coalesce(' ~ clean_double('total_discounts') ~ ', 0)', dbt.type_numeric()) }} as total_discounts,
        {{ relay_try_cast('coalesce(' ~ clean_double('total_tax') ~ ', 0)', dbt.type_numeric()) }} as total_tax,
        {{ relay_try_cast(clean_double('total_line_items_price'), dbt.type_numeric()) }} as total_line_items_price,
        lower({{ clean_text('source_name') }}) as source_name,
        coalesce({{ clean_boolean('test') }}, false) as is_test_order,
        {{ clean_text('browser_ip') }} as browser_ip,
        {{ clean_text('checkout_token') }} as checkout_token,
        {{ clean_text('cart_token') }} as cart_token,
        {{ clean_boolean('buyer_accepts_marketing') }} as buyer_accepts_marketing,
        {{ clean_text('billing_address_address_1') }} as billing_address_1,
        {{ clean_text('billing_address_zip') }} as billing_zip,
        upper({{ clean_text('billing_address_country_code') }}) as billing_country_code,
        {{ clean_text('shipping_address_address_1') }} as shipping_address_1,
        {{ clean_text('shipping_address_city') }} as shipping_city,
        {{ clean_text('shipping_address_zip') }} as shipping_zip,
        upper({{ clean_text('shipping_address_country_code') }}) as shipping_country_code,
        {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
    from versions
    where {{ relay_is_latest_version('shopify.order') }}
        and {{ not_deleted() }}
        -- An order stamped after the loader wrote it has not happened yet; it would move the clock.
        and not {{ relay_is_future_dated('created_at') }}
)

select * from cleaned
