{{ config(severity='error', store_failures=true, tags=['gate'],
          meta={'dagster': {'ref': {'name': 'stg_shopify__orders'}}}) }}
-- Raw data (error; a gate, so it runs on both paths and blocks every sync): a value of a typed column
-- (declared data_type timestamp, boolean, bigint or double) that was landed (not blank) but cannot be
-- read, e.g. "31/12/2026" or "yesterday" in a timestamp, "yes please" in a boolean, "12a" or "12.5" in a
-- bigint id, "abc" or "1,5" in an amount, in a column landed as text (the rules: macros/cleaning.sql).
-- Staging would turn it into null, which downstream reads as "never happened" (an order without a time,
-- a cancellation that disappears), "false" (a test order counted as real) or "no key", so the build
-- stops instead. One row per bad value, naming the raw table, the column, the row's key and the value as
-- landed (kept in schema dbt_test__audit, table assert_raw_timestamps_parse; the name predates the other
-- types). Soft-deleted rows are skipped: staging drops them anyway. Columns landed typed cannot hold a
-- bad value and cost nothing to check. Plausible amounts: assert_raw_amounts_are_plausible.
-- depends_on: {{ ref('stg_shopify__customers') }} {{ ref('stg_shopify__customer_tags') }} {{ ref('stg_shopify__orders') }}
-- depends_on: {{ ref('stg_shopify__order_lines') }} {{ ref('stg_shopify__order_discount_codes') }} {{ ref('stg_shopify__discount_allocations') }}
-- depends_on: {{ ref('stg_shopify__refunds') }} {{ ref('stg_shopify__order_line_refunds') }} {{ ref('stg_shopify__transactions') }}
-- depends_on: {{ ref('stg_shopify__abandoned_checkouts') }} {{ ref('stg_shopify__abandoned_checkout_discount_codes') }} {{ ref('stg_shopify__shops') }}
-- depends_on: {{ ref('stg_segment__tracks') }} {{ ref('stg_segment__identifies') }} {{ ref('stg_salesforce__contacts') }}

select
    cast(null as {{ dbt.type_string() }}) as raw_table,
    cast(null as {{ dbt.type_string() }}) as column_name,
    cast(null as {{ dbt.type_string() }}) as row_key,
    cast(null as {{ dbt.type_string() }}) as raw_value
where 1 = 0
{%- for table in relay_raw_keys() %}
    {%- set source_name, table_name = table.split('.') %}
    {%- set raw = relay_source(source_name, table_name) %}
    {%- set node = graph.sources.get('source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name) if execute else none %}
    {%- set columns = [] %}
    {%- for column in (node.columns.values() if node else []) if relay_declared_kind(column.data_type) %}
        {%- do columns.append(column) %}
    {%- endfor %}
    {%- set live = relay_raw_live_rows(node) %}
    {%- for declared in columns %}
        {%- set column = declared.name %}
union all
select
    '{{ table }}',
    '{{ column }}',
    {{ relay_raw_row_key(table) }},
    cast({{ adapter.quote(column) }} as {{ dbt.type_string() }})
from ({{ raw }}) as raw
where {{ relay_is_unparseable(adapter.quote(column), declared.data_type) }}
    and {{ live }}
    {%- endfor %}
{%- endfor %}
