{#- Relay's sync ledger (schema relay, written by the sync engine, not a raw source): the relation when a
    sync has run here, else an empty one with the columns the reporting models read. -#}
{% macro relay_ledger(table, columns) -%}
    {%- set relation = adapter.get_relation(database=target.database, schema='relay', identifier=table) if execute else none -%}
    {%- if relation is not none -%}
        select {{ columns.keys() | join(', ') }} from {{ relation }}
    {%- else -%}
        select
        {%- for name, data_type in columns.items() %}
            cast(null as {{ data_type }}) as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
        where 1 = 0
    {%- endif -%}
{%- endmacro %}


{#- The text at `key` of a JSON column (a ledger payload). -#}
{% macro json_text(column, key) -%}
    {{ return(adapter.dispatch('json_text')(column, key)) }}
{%- endmacro %}

{% macro default__json_text(column, key) -%}
    get_json_object({{ column }}, '$.{{ key }}')
{%- endmacro %}

{% macro duckdb__json_text(column, key) -%}
    json_extract_string({{ column }}, '$.{{ key }}')
{%- endmacro %}
