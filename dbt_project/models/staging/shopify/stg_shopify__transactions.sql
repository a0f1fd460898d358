{{ config(scope_delete=[['order_id', 'changed:shopify_order'], ['transaction_id', 'self']]) }}

{#- A table, not a view: a scoped run (macros/scope/) re-stages only the keys the loaders changed
    (every raw version of them, so deduplication picks what a full rebuild would), and the models
    downstream read the stored rows of the rest instead of re-deduplicating the whole raw table. -#}
-- depends_on: {{ ref('int_scope_changed_records') }}

with source as (
    {{ relay_source('shopify', 'transaction') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('shopify.transaction', ['_fivetran_synced']) }} as _relay_version_rank
    from source
    {%- if is_incremental() %}
    -- Every version of every transaction of an order the loaders changed (a version may name another order).
    -- (The raw table is read again, not the CTE: a CTE read twice would be materialized whole first.)
    where cast({{ clean_bigint('id') }} as {{ dbt.type_bigint() }}) in (
        select cast({{ clean_bigint('id') }} as {{ dbt.type_bigint() }})
        from ({{ relay_source('shopify', 'transaction') }}) as landed
        where {{ in_changed('cast(' ~ clean_bigint('order_id') ~ ' as ' ~ dbt.type_bigint() ~ ')', 'shopify_order', 'bigint') }}
    )
    {%- endif %}
)

select
    cast({{ clean_bigint('id') }} as {{ dbt.type_bigint() }}) as transaction_id,
    cast({{ clean_bigint('order_id') }} as {{ dbt.type_bigint() }}) as order_id,
    cast({{ clean_bigint('refund_id') }} as {{ dbt.type_bigint() }}) as refund_id,
    -- A stored table materializes every value: an amount that cannot be a number (NaN, out of range) is
    -- null here instead of failing the model; assert_raw_amounts_are_plausible fails the build naming it.
    {{ relay_try_cast(clean_double('amount'), dbt.type_numeric()) }} as amount,
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
    coalesce({{ clean_boolean('test') }}, false) as is_test,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from versions
where {{ relay_is_latest_version('shopify.transaction') }}
