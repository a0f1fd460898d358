{{ config(severity='warn', store_failures=true, meta={'dagster': {'ref': {'name': 'stg_shopify__orders'}}}) }}
-- Raw data (warning): keys the loader delivered more than once (Fivetran after a re-sync or a table
-- rebuild; append-mode loaders always). Staging keeps the newest version (_fivetran_synced, then
-- updated_at) and ignores the others, see macros/data_quality.sql; versions that tie fail the staging
-- model's unique test instead. Listed so that a loader suddenly duplicating rows is noticed: raw table,
-- key, number of versions, the newest loader time (kept in schema dbt_test__audit, table
-- assert_no_superseded_raw_versions). Segment's at-least-once duplicates are expected and not listed.
-- depends_on: {{ ref('stg_shopify__customers') }} {{ ref('stg_shopify__customer_tags') }} {{ ref('stg_shopify__orders') }}
-- depends_on: {{ ref('stg_shopify__order_lines') }} {{ ref('stg_shopify__order_discount_codes') }} {{ ref('stg_shopify__discount_allocations') }}
-- depends_on: {{ ref('stg_shopify__refunds') }} {{ ref('stg_shopify__order_line_refunds') }} {{ ref('stg_shopify__transactions') }}
-- depends_on: {{ ref('stg_shopify__abandoned_checkouts') }} {{ ref('stg_shopify__abandoned_checkout_discount_codes') }} {{ ref('stg_shopify__shops') }}
-- depends_on: {{ ref('stg_salesforce__contacts') }}

select
    cast(null as {{ dbt.type_string() }}) as raw_table,
    cast(null as {{ dbt.type_string() }}) as row_key,
    cast(null as {{ dbt.type_bigint() }}) as versions,
    cast(null as {{ dbt.type_timestamp() }}) as newest_loader_synced_at
where 1 = 0
{%- for table, keys in relay_raw_keys().items() if not table.startswith('segment.') %}
    {%- set source_name, table_name = table.split('.') %}
union all
select
    '{{ table }}',
    {{ relay_raw_row_key(table) }},
    count(*),
    max({{ clean_timestamp('_fivetran_synced') }})
from ({{ relay_source(source_name, table_name) }}) as raw
where {% for key in keys %}{{ adapter.quote(key) }} is not null{{ " and " if not loop.last }}{% endfor %}
group by {% for key in keys %}{{ adapter.quote(key) }}{{ ", " if not loop.last }}{% endfor %}
having count(*) > 1
{%- endfor %}
