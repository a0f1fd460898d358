{#- Cleaning helpers used by staging. Built on dbt's cross-database macros so the project ports to
    other warehouses; only `relay_regexp_*` is dispatched per adapter. -#}

{#- Text with the byte-order mark, surrounding whitespace and empty strings removed. -#}
{% macro clean_text(column) -%}
    nullif(trim(replace(cast({{ column }} as {{ dbt.type_string() }}), chr(65279), '')), '')
{%- endmacro %}

{#- Timestamps landed as text may carry trailing spaces or a BOM; unparseable values become null
    (and the not_null tests on required timestamps name the rows). -#}
{% macro clean_timestamp(column) -%}
    {{ dbt.safe_cast(clean_text(column), api.Column.translate_type('timestamp')) }}
{%- endmacro %}

{#- Lower-cased, trimmed email; null when it is not shaped like an address (hashed placeholders,
    typos without "@"). -#}
{% macro normalize_email(column) -%}
    case
        when {{ relay_regexp_matches(clean_text(column), '^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:]]+$') }}
            then lower({{ clean_text(column) }})
    end
{%- endmacro %}

{#- E.164: "+" then 8-15 digits. "00" is the international prefix; a bare national number of the
    default country's length gets its calling code (var default_phone_country_code). -#}
{% macro normalize_phone(column) -%}
    {%- set digits = relay_regexp_replace(clean_text(column), '[^0-9]', '') -%}
    {%- set cc = var('default_phone_country_code', '1') | string -%}
    {%- set national_length = var('default_phone_national_length', 10) -%}
    case
        when {{ clean_text(column) }} like '+%' then '+' || {{ digits }}
        when {{ digits }} like '00%' then '+' || substr({{ digits }}, 3)
        when length({{ digits }}) = {{ national_length }} then '+{{ cc }}' || {{ digits }}
        when length({{ digits }}) = {{ national_length + cc | length }} and {{ digits }} like '{{ cc }}%' then '+' || {{ digits }}
    end
{%- endmacro %}

{% macro valid_e164(expression) -%}
    case when {{ relay_regexp_matches(expression, '^\\+[1-9][0-9]{7,14}$') }} then {{ expression }} end
{%- endmacro %}

{% macro relay_regexp_matches(expression, pattern) -%}
    {{ return(adapter.dispatch('relay_regexp_matches')(expression, pattern)) }}
{%- endmacro %}
{% macro default__relay_regexp_matches(expression, pattern) -%}
    regexp_like({{ expression }}, '{{ pattern }}')
{%- endmacro %}
{% macro duckdb__relay_regexp_matches(expression, pattern) -%}
    regexp_full_match({{ expression }}, '{{ pattern }}')
{%- endmacro %}
{% macro bigquery__relay_regexp_matches(expression, pattern) -%}
    regexp_contains({{ expression }}, r'{{ pattern }}')
{%- endmacro %}

{% macro relay_regexp_replace(expression, pattern, replacement) -%}
    {{ return(adapter.dispatch('relay_regexp_replace')(expression, pattern, replacement)) }}
{%- endmacro %}
{% macro default__relay_regexp_replace(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}
{% macro snowflake__relay_regexp_replace(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}')
{%- endmacro %}
{% macro bigquery__relay_regexp_replace(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, r'{{ pattern }}', '{{ replacement }}')
{%- endmacro %}

{#- Soft-deleted rows never leave staging. -#}
{% macro not_deleted(flag='_fivetran_deleted') -%}
    not coalesce({{ flag }}, false)
{%- endmacro %}
