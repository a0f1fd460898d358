{#- What the scope models read from the raw tables directly (staging is rebuilt from the scope, so it
    cannot tell them what changed). -#}

{#- Ids of the rows of a raw table the loader wrote after `since`, as (record_type, record_id). -#}
{% macro scope_changed_ids(since, source_name, table, id_expression, record_type, column='_fivetran_synced') %}
    select
        '{{ record_type }}' as record_type,
        {{ id_expression }} as record_id
    from ({{ relay_source(source_name, table) }})
    where {{ clean_timestamp(column) }} > {{ since }}
{%- endmacro %}


{#- A payment card's fingerprint (BIN + last four digits) from a raw Shopify transaction, as staging
    derives card_bin and card_last4. -#}
{% macro raw_card_fingerprint() -%}
    {{ clean_text('payment_credit_card_bin') }} || '-' || right({{ relay_regexp_replace(clean_text('payment_credit_card_number'), '[^0-9]', '') }}, 4)
{%- endmacro %}
