{#- Identity helpers shared by the core marts and marts.data_health. -#}
{#- The owner of each shared address (guard reason shared_by_accounts; emails and phones): the person of the
    Shopify account updated last while carrying it (ties: the higher account id). A query; callers filter it.
    Columns: identifier, identifier_type, identifier_value, customer_key, account_count. -#}
{% macro relay_shared_address_owners() -%}
    select identifier, identifier_type, identifier_value, customer_key, account_count
    from (
        select
            observed.identifier,
            observed.identifier_type,
            observed.identifier_value,
            records.customer_key,
            count(*) over (partition by observed.identifier) as account_count,
            row_number() over (
                partition by observed.identifier
                order by observed.record_updated_at desc, observed.shopify_customer_id desc
            ) as recency
        from {{ ref('int_identifiers_observed') }} as observed
        inner join {{ ref('int_identifiers_guarded') }} as guarded
            on observed.identifier = guarded.identifier
        inner join {{ ref('int_identity_records_resolved') }} as records
            on observed.record_type = records.record_type
            and observed.record_id = records.record_id
        where guarded.guard_reason = 'shared_by_accounts'
            and observed.identifier_type in ('email', 'phone')
            and observed.record_type = 'shopify_customer'
    ) as accounts
    where recency = 1
{%- endmacro %}
