with source as (
    {{ relay_source('shopify', 'transaction') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('shopify.transaction', ['_fivetran_synced']) }} as _relay_version_rank
    from source
)

select
    cast(id as {{ dbt.type_bigint() }}) as transaction_id,
    cast(order_id as {{ dbt.type_bigint() }}) as order_id,
    cast(refund_id as {{ dbt.type_bigint() }}) as refund_id,
    cast(amount as {{ dbt.type_numeric() }}) as amount,
    lower({{ clean_text('kind') }}) as kind,
    lower({{ clean_text('status') }}) as status,
    lower({{ clean_text('gateway') }}) as gateway,
    upper({{ clean_text('currency') }}) as currency,
    {{ clean_timestamp('created_at') }} as created_at,
    {{ clean_timestamp('processed_at') }} as processed_at,
    {{ clean_text('payment_credit_card_bin') }} as card_bin,
    -- Only the last four digits of the masked number are kept: with the BIN they fingerprint a card.
    right({{ relay_regexp_replace(clean_text('payment_credit_card_number'), '[^0-9]', '') }}, 4) as card_last4,
    lower({{ clean_text('payment_credit_card_company') }}) as card_company,
    coalesce(test, false) as is_test,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from versions
where {{ relay_is_latest_version('shopify.transaction') }}
