{{ config(severity='error', store_failures=true, tags=['gate'],
          meta={'dagster': {'ref': {'name': 'stg_shopify__orders'}}}) }}
-- Raw data (error; a gate, so it runs on both paths and blocks every sync): money and quantities
-- that cannot be right. Shopify never lands a negative price, total, discount, tax, refund or
-- transaction amount (refunds are rows of their own, with positive amounts); a value above var
-- relay_max_plausible_amount (default 1e9 in the shop currency; raise it for currencies such as IDR) or
-- a quantity above var relay_max_plausible_quantity (default 1e6) is a unit or loader error; NaN and
-- infinity are not amounts, and text that is not a number cannot be summed. Any of them would flow into
-- lifetime value, VIP tiers and discount-abuse flags at every destination, and no automatic repair is
-- right, so the build stops. One row per bad value: raw table, column, the row's key, the value as landed
-- and the problem (kept in schema dbt_test__audit, table assert_raw_amounts_are_plausible).
-- The raw value is checked, not the staged one: staging casts to a decimal, which NaN, infinity and
-- values past 1e22 would make fail without naming the row. Null and blank text are no amount (staging
-- reads them as null or its default), not a failure.
-- depends_on: {{ ref('stg_shopify__orders') }} {{ ref('stg_shopify__order_lines') }} {{ ref('stg_shopify__order_line_refunds') }}
-- depends_on: {{ ref('stg_shopify__transactions') }} {{ ref('stg_shopify__order_discount_codes') }} {{ ref('stg_shopify__discount_allocations') }}
-- depends_on: {{ ref('stg_shopify__abandoned_checkouts') }} {{ ref('stg_shopify__abandoned_checkout_discount_codes') }}
{%- set max_amount = var('relay_max_plausible_amount', 1000000000) %}
{%- set max_quantity = var('relay_max_plausible_quantity', 1000000) %}
{%- set checks = {
    'shopify.order': {'total_price': max_amount, 'subtotal_price': max_amount, 'total_discounts': max_amount,
                      'total_tax': max_amount, 'total_line_items_price': max_amount},
    'shopify.order_line': {'price': max_amount, 'total_discount': max_amount, 'quantity': max_quantity},
    'shopify.order_line_refund': {'subtotal': max_amount, 'total_tax': max_amount, 'quantity': max_quantity},
    'shopify.transaction': {'amount': max_amount},
    'shopify.order_discount_code': {'amount': max_amount},
    'shopify.discount_allocation': {'amount': max_amount},
    'shopify.abandoned_checkout': {'total_price': max_amount, 'subtotal_price': max_amount, 'total_discounts': max_amount},
    'shopify.abandoned_checkout_discount_code': {'amount': max_amount},
} %}

select
    cast(null as {{ dbt.type_string() }}) as raw_table,
    cast(null as {{ dbt.type_string() }}) as column_name,
    cast(null as {{ dbt.type_string() }}) as row_key,
    cast(null as {{ dbt.type_string() }}) as raw_value,
    cast(null as {{ dbt.type_string() }}) as problem
where 1 = 0
{%- for table, columns in checks.items() %}
    {%- set source_name, table_name = table.split('.') %}
    {%- set node = graph.sources.get('source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name) if execute else none %}
    {%- for column, maximum in columns.items() %}
        {#- Read as staging reads it (macros/cleaning.sql: text that is no number is null here too). #}
        {%- set value = clean_double(adapter.quote(column)) %}
union all
select
    '{{ table }}',
    '{{ column }}',
    {{ relay_raw_row_key(table) }},
    cast({{ adapter.quote(column) }} as {{ dbt.type_string() }}),
    case
        when {{ value }} is null then 'not a number'
        when not ({{ value }} between -1e300 and 1e300) then 'not a finite number'
        when {{ value }} < 0 then 'negative'
        else 'above the plausible maximum ' || cast({{ maximum }} as {{ dbt.type_string() }})
    end
from ({{ relay_source(source_name, table_name) }}) as raw
where {{ relay_raw_live_rows(node) }}
    and {{ relay_has_value(adapter.quote(column)) }}
    and ({{ value }} is null or not ({{ value }} between 0 and {{ maximum }}))
    {%- endfor %}
{%- endfor %}
