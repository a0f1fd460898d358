{#- One row: how far the loaders had written when this run read the raw data (the newest loaded-at over
    every raw table identity and commerce read), and what scope this run works in. The next run treats
    anything written after loaded_through as changed (macros/scope/). -#}

{%- set previous = relay_previous_run() %}

with loads as (
    {%- for source_name, table, column in [
        ('shopify', 'customer', '_fivetran_synced'), ('shopify', 'order', '_fivetran_synced'),
        ('shopify', 'order_discount_code', '_fivetran_synced'), ('shopify', 'refund', '_fivetran_synced'),
        ('shopify', 'order_line_refund', '_fivetran_synced'), ('shopify', 'transaction', '_fivetran_synced'),
        ('shopify', 'abandoned_checkout', '_fivetran_synced'), ('segment', 'identifies', 'received_at'),
        ('segment', 'tracks', 'received_at'), ('salesforce', 'contact', '_fivetran_synced')] %}
    select max({{ clean_timestamp(column) }}) as loaded_at from ({{ relay_source(source_name, table) }})
    {{ 'union all' if not loop.last }}
    {%- endfor %}
)

select
    max(loaded_at) as loaded_through,
    {{ "cast('" ~ previous.loaded_through ~ "' as " ~ dbt.type_timestamp() ~ ")" if previous else "cast(null as " ~ dbt.type_timestamp() ~ ")" }} as previous_loaded_through,
    {{ "cast('" ~ previous.as_of ~ "' as " ~ dbt.type_timestamp() ~ ")" if previous and previous.as_of else "cast(null as " ~ dbt.type_timestamp() ~ ")" }} as previous_as_of,
    {{ 'true' if previous else 'false' }} as is_scoped
from loads
