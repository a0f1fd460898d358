{#- Timestamp encodings that destinations expect. Warehouse timestamps are naive UTC. Dispatched, so the
    sync models stay portable; add `<adapter>__...` implementations for another warehouse. -#}

{#- Whole seconds since 1970-01-01 UTC as BIGINT (Customer.io timestamps). -#}
{% macro to_unix_seconds(column) -%}
    {{ return(adapter.dispatch('to_unix_seconds')(column)) }}
{%- endmacro %}

{% macro default__to_unix_seconds(column) -%}
    cast({{ dbt.datediff("cast('1970-01-01 00:00:00' as " ~ dbt.type_timestamp() ~ ")", column, 'second') }} as {{ dbt.type_bigint() }})
{%- endmacro %}

{% macro duckdb__to_unix_seconds(column) -%}
    cast(floor(epoch({{ column }})) as {{ dbt.type_bigint() }})
{%- endmacro %}

{#- RFC 3339 / ISO 8601 UTC string 'YYYY-MM-DDTHH:MM:SSZ' (Talon.One `time` attributes, Cordial dates). -#}
{% macro to_rfc3339(column) -%}
    {{ return(adapter.dispatch('to_rfc3339')(column)) }}
{%- endmacro %}

{% macro default__to_rfc3339(column) -%}
    to_char({{ column }}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
{%- endmacro %}

{% macro duckdb__to_rfc3339(column) -%}
    strftime({{ column }}, '%Y-%m-%dT%H:%M:%SZ')
{%- endmacro %}

{% macro bigquery__to_rfc3339(column) -%}
    format_timestamp('%Y-%m-%dT%H:%M:%SZ', {{ column }})
{%- endmacro %}


{#- A stable bucket 0..buckets-1 from the MD5 of an expression: the same input lands in the same bucket
    on every run and every engine (used for the holdout group). -#}
{% macro hash_bucket(expression, buckets) -%}
    {{ return(adapter.dispatch('hash_bucket')(expression, buckets)) }}
{%- endmacro %}

{% macro default__hash_bucket(expression, buckets) -%}
    mod(('x' || lpad(substr({{ dbt.hash(expression) }}, 1, 8), 16, '0'))::bit(64)::bigint, {{ buckets }})
{%- endmacro %}

{% macro duckdb__hash_bucket(expression, buckets) -%}
    cast(mod(cast(('0x' || substr({{ dbt.hash(expression) }}, 1, 8)) as {{ dbt.type_bigint() }}), {{ buckets }}) as {{ dbt.type_int() }})
{%- endmacro %}

{% macro snowflake__hash_bucket(expression, buckets) -%}
    mod(to_number(substr({{ dbt.hash(expression) }}, 1, 8), 'XXXXXXXX'), {{ buckets }})
{%- endmacro %}

{% macro bigquery__hash_bucket(expression, buckets) -%}
    mod(cast(concat('0x', substr({{ dbt.hash(expression) }}, 1, 8)) as int64), {{ buckets }})
{%- endmacro %}
