{#- What staging does with raw rows it cannot take at face value, and what the raw-data tests in tests/
    check. Every row staging sets aside is named by a test: nothing is dropped silently.

      duplicate key     newest version wins (relay_version_rank); ties fail the model's unique test
      null key          kept, so the model's not_null test fails and names the row
      future-dated      orders and checkouts stamped after the loader wrote them are left out of staging
                        (they would move the clock, int_as_of); assert_no_future_dated_activity warns
      unreadable value  a timestamp, boolean, bigint or double landed as text that its rules (macros/cleaning.sql)
                        cannot read: null in staging; assert_raw_timestamps_parse fails the build naming each
      bad amount        negative, not a number, or above var relay_max_plausible_amount:
                        assert_raw_amounts_are_plausible fails the build naming each value -#}

{#- The key of each raw table: what staging deduplicates on and how the raw-data tests name a row. -#}
{% macro relay_raw_keys() -%}
    {{ return({
        'shopify.customer': ['id'],
        'shopify.customer_tag': ['customer_id', 'index'],
        'shopify.order': ['id'],
        'shopify.order_line': ['id'],
        'shopify.order_discount_code': ['order_id', 'index'],
        'shopify.discount_allocation': ['order_line_id', 'index'],
        'shopify.refund': ['id'],
        'shopify.order_line_refund': ['id'],
        'shopify.transaction': ['id'],
        'shopify.abandoned_checkout': ['id'],
        'shopify.abandoned_checkout_discount_code': ['checkout_id', 'index'],
        'shopify.shop': ['id'],
        'shopify.product': ['id'],
        'segment.tracks': ['id'],
        'segment.identifies': ['id'],
        'salesforce.contact': ['id'],
    }) }}
{%- endmacro %}

{#- The declared data_type of a raw column (its sources YAML), or none when unknown (parsing). -#}
{% macro relay_declared_type(table, column) -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set source_name, table_name = table.split('.') -%}
    {%- set node = graph.sources.get('source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name) -%}
    {%- set declared = node.columns.get(column) if node else none -%}
    {{ return(declared.data_type if declared else none) }}
{%- endmacro %}

{#- A raw key column read as its declared type (a bigint id landed as text " 5001" or "5001.0" is 5001), so
    versions of one key are one key however the loader wrote it. A no-op for keys landed typed. -#}
{% macro relay_raw_key(table, column) -%}
    {%- if relay_declared_kind(relay_declared_type(table, column)) in ('boolean', 'bigint', 'double', 'timestamp') -%}
        {{ clean_declared(column, relay_declared_type(table, column)) }}
    {%- else -%}
        {{ column }}
    {%- endif -%}
{%- endmacro %}

{#- A raw row's key as text, e.g. "5001" or "5001:0" (compound keys), as landed. -#}
{% macro relay_raw_row_key(table) -%}
    {%- set parts = [] -%}
    {%- for column in relay_raw_keys()[table] -%}
        {%- do parts.append("coalesce(cast(" ~ adapter.quote(column) ~ " as " ~ dbt.type_string() ~ "), 'null')") -%}
    {%- endfor -%}
    {{ parts | join(" || ':' || ") }}
{%- endmacro %}

{#- Loaders can deliver one key twice: Fivetran after a re-sync or a table rebuild, append-mode loaders
    (Airbyte, dlt) always. The version the loader wrote last (_fivetran_synced, then the tie-breakers
    given, e.g. updated_at) is the row; the others are superseded. Versions that still tie cannot be
    ordered: all of them stay, so the staging model's unique test fails naming the key rather than Relay
    picking one. A soft delete is judged on the newest version (an older, undeleted copy cannot come
    back). Use as: `rank` column in a CTE over the source, then `where relay_is_latest_version(...)`. -#}
{% macro relay_version_rank(table, newest_first=['_fivetran_synced']) -%}
    rank() over (
        partition by
        {%- for column in relay_raw_keys()[table] %} {{ relay_raw_key(table, column) }}{{ "," if not loop.last }}{% endfor %}
        order by
        {%- for column in newest_first %}
            {{ clean_timestamp(column) }} desc nulls last{{ "," if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}

{#- Rows whose key is null are kept as they are (the model's not_null test names them). -#}
{% macro relay_is_latest_version(table, rank_column='_relay_version_rank') -%}
    ({% for column in relay_raw_keys()[table] %}{{ relay_raw_key(table, column) }} is null or {% endfor %}{{ rank_column }} = 1)
{%- endmacro %}

{#- Activity stamped later than the loader wrote it (beyond var relay_future_tolerance_minutes, default
    60, for clock skew) has not happened: a mistyped year or a wrong time zone. Left in staging it would
    move the clock (int_as_of is the newest activity) and keep its customer "recent" until that date.
    Staging leaves such rows out; tests/assert_no_future_dated_activity.sql lists them (warning). -#}
{% macro relay_is_future_dated(timestamp_column, synced_column='_fivetran_synced') -%}
    coalesce({{ clean_timestamp(timestamp_column) }} > {{ dbt.dateadd('minute', var('relay_future_tolerance_minutes', 60), clean_timestamp(synced_column)) }}, false)
{%- endmacro %}

{#- A timestamp that was landed (not blank) but cannot be read. -#}
{% macro relay_is_unparseable_timestamp(column) -%}
    {{ return(adapter.dispatch('relay_is_unparseable_timestamp')(column)) }}
{%- endmacro %}
{% macro default__relay_is_unparseable_timestamp(column) -%}
    ({{ clean_text(column) }} is not null and {{ clean_timestamp(column) }} is null)
{%- endmacro %}
{#- DuckDB: a column landed with a timestamp type cannot hold a bad value; the check costs nothing there. -#}
{% macro duckdb__relay_is_unparseable_timestamp(column) -%}
    case
        when typeof({{ column }}) in ('TIMESTAMP', 'TIMESTAMP_NS', 'TIMESTAMP_MS', 'TIMESTAMP_S', 'DATE', 'TIMESTAMP WITH TIME ZONE')
            then false
        else {{ relay_timestamp_text(column) }} is not null and {{ clean_timestamp(column) }} is null
    end
{%- endmacro %}

{#- A value of a typed column (declared data_type: timestamp, boolean, bigint, double) that was landed (not
    blank) but cannot be read by its rules (macros/cleaning.sql). False for text columns. -#}
{% macro relay_is_unparseable(column, data_type) -%}
    {%- set kind = relay_declared_kind(data_type) -%}
    {%- if kind == 'timestamp' -%}{{ return(relay_is_unparseable_timestamp(column)) }}
    {%- elif kind is none -%}{{ return('false') }}
    {%- endif -%}
    {{ return(adapter.dispatch('relay_is_unparseable')(column, data_type)) }}
{%- endmacro %}
{% macro default__relay_is_unparseable(column, data_type) -%}
    ({{ relay_landed_text(column) }} is not null and {{ clean_declared(column, data_type) }} is null)
{%- endmacro %}
{#- DuckDB: only a column landed as text can hold an unreadable value; the check costs nothing otherwise. -#}
{% macro duckdb__relay_is_unparseable(column, data_type) -%}
    case
        when typeof({{ column }}) <> 'VARCHAR' then false
        else {{ default__relay_is_unparseable(column, data_type) }}
    end
{%- endmacro %}

{#- A raw value is there: not null, and when landed as text not blank (blank text stages as null). -#}
{% macro relay_has_value(column) -%}
    {{ return(adapter.dispatch('relay_has_value')(column)) }}
{%- endmacro %}
{% macro default__relay_has_value(column) -%}
    ({{ relay_landed_text(column) }} is not null)
{%- endmacro %}
{#- DuckDB: a typed column is not null (typeof() is resolved when the query is planned). -#}
{% macro duckdb__relay_has_value(column) -%}
    case
        when typeof({{ column }}) <> 'VARCHAR' then {{ column }} is not null
        else {{ relay_landed_text(column) }} is not null
    end
{%- endmacro %}

{#- Rows staging keeps by their own flags (soft deletes), for the raw-data tests: a condition. -#}
{% macro relay_raw_live_rows(node) -%}
    {%- set conditions = ['true'] -%}
    {%- if node and '_fivetran_deleted' in node.columns -%}{%- do conditions.append(not_deleted()) -%}{%- endif -%}
    {%- if node and 'is_deleted' in node.columns -%}{%- do conditions.append(not_deleted('is_deleted')) -%}{%- endif -%}
    {{ conditions | join(' and ') }}
{%- endmacro %}

{#- A cast that yields null instead of failing (dbt's safe_cast is a plain cast on DuckDB). -#}
{% macro relay_try_cast(expression, type) -%}
    {{ return(adapter.dispatch('relay_try_cast')(expression, type)) }}
{%- endmacro %}
{% macro default__relay_try_cast(expression, type) -%}
    {{ dbt.safe_cast(expression, type) }}
{%- endmacro %}
{% macro duckdb__relay_try_cast(expression, type) -%}
    try_cast({{ expression }} as {{ type }})
{%- endmacro %}
