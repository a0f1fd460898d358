{#- Cleaning helpers used by staging. Built on dbt's cross-database macros so the project ports to
    other warehouses; `relay_regexp_*`, `relay_nfc` and `clean_timestamp` are dispatched per adapter. -#}

{#- Text with the byte-order mark, surrounding whitespace and empty strings removed. -#}
{% macro clean_text(column) -%}
    nullif(trim(replace(cast({{ column }} as {{ dbt.type_string() }}), chr(65279), '')), '')
{%- endmacro %}

{#- Timestamps (UTC). Landed as text they may carry surrounding whitespace (spaces, tabs, line breaks) or
    a BOM, and an explicit UTC offset ("+02:00", "-0500") is converted to UTC rather than dropped.
    Unparseable values become null; tests/assert_raw_timestamps_parse.sql names each one (table, column,
    row, value) and fails the build, so a null here never passes for "no timestamp". -#}
{% macro clean_timestamp(column) -%}
    {{ return(adapter.dispatch('clean_timestamp')(column)) }}
{%- endmacro %}

{% macro default__clean_timestamp(column) -%}
    {{ dbt.safe_cast(clean_text(column), api.Column.translate_type('timestamp')) }}
{%- endmacro %}

{#- DuckDB: typeof() is resolved when the query is planned, so a column landed as a timestamp is used as it
    is (no round trip through text, which cost about as much as the rest of staging); only text is parsed. -#}
{% macro duckdb__clean_timestamp(column) -%}
    {%- set text = relay_timestamp_text(column) -%}
    case
        when typeof({{ column }}) in ('TIMESTAMP', 'TIMESTAMP_NS', 'TIMESTAMP_MS', 'TIMESTAMP_S', 'DATE')
            then try_cast({{ column }} as timestamp)
        when typeof({{ column }}) = 'TIMESTAMP WITH TIME ZONE'
            then timezone('UTC', try_cast({{ column }} as timestamptz))
        when regexp_full_match({{ text }}, '.*[0-9]:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?[[:space:]]*[+-][0-9]{2}(:?[0-9]{2})?')
            then timezone('UTC', try_cast(regexp_replace({{ text }}, '[[:space:]]+([+-][0-9]{2}(:?[0-9]{2})?)$', '\1') as timestamptz))
        else try_cast({{ text }} as timestamp)
    end
{%- endmacro %}

{#- The text of a timestamp landed as text: clean_text, and tabs or line breaks around it removed too. -#}
{% macro relay_timestamp_text(column) -%}
    {{ relay_landed_text(column) }}
{%- endmacro %}

{#- Any value as the text it landed as: clean_text, and whitespace of any kind around it (tabs, line
    breaks) removed too; null when nothing is left. -#}
{% macro relay_landed_text(column) -%}
    nullif({{ relay_regexp_replace(clean_text(column), '^[[:space:]]+|[[:space:]]+$', '') }}, '')
{%- endmacro %}

{#- Typed raw columns landed as text. Any raw column may land as text (CSV loaders, Airbyte's and dlt's
    raw modes, manual uploads), so staging reads every non-text column through the macro of the type its
    sources YAML declares (`data_type`): clean_boolean, clean_bigint, clean_double, clean_timestamp. Each
    returns that declared type; staging's own casts and defaults then apply unchanged, so a text landing
    stages exactly as the typed one. The rules for text (surrounding whitespace of any kind and a BOM are
    removed first; blank is null, never an error):

      boolean    true, t, yes, y, 1 / false, f, no, n, 0; any case.
      bigint     an optional sign and digits. A decimal point followed only by zeros is accepted ("5001.0"
                 is 5001: loaders that pass ids through floats, such as pandas with a missing value in the
                 column, write them so); any other fraction ("12.5"), an exponent ("1e3"), thousands
                 separators ("1,000", "1_000") or a value outside the bigint range is unparseable, never
                 rounded.
      double     a decimal number with an optional exponent ("12", "-0.5", ".5", "1.5e3"), or nan, inf,
                 infinity (any case, signed): what a double column can hold. Whether an amount is
                 plausible (finite, not negative) is tests/assert_raw_amounts_are_plausible.sql's to say.
                 Thousands separators, currency signs and decimal commas ("1,5") are unparseable.
      timestamp  see clean_timestamp.

    An unparseable value becomes null; tests/assert_raw_timestamps_parse.sql names each one (table, column,
    row, value) for every typed column and fails the build, so a null never stands for "unreadable".
    DuckDB: a column that landed typed (not VARCHAR) is cast to the declared type as before, a no-op when
    it landed as declared (typeof() is resolved when the query is planned, so the text rules cost nothing
    then). Other warehouses read every value through its text (exact where the warehouse prints floats
    round-trip, as Postgres 12+ and BigQuery do). -#}
{% macro clean_boolean(column) -%}
    {{ return(adapter.dispatch('clean_boolean')(column)) }}
{%- endmacro %}
{% macro default__clean_boolean(column) -%}
    {%- set text = 'lower(' ~ relay_landed_text(column) ~ ')' -%}
    case
        when {{ text }} in ('true', 't', 'yes', 'y', '1') then true
        when {{ text }} in ('false', 'f', 'no', 'n', '0') then false
    end
{%- endmacro %}
{% macro duckdb__clean_boolean(column) -%}
    case when typeof({{ column }}) <> 'VARCHAR' then cast({{ column }} as boolean) else {{ default__clean_boolean(column) }} end
{%- endmacro %}

{% macro clean_bigint(column) -%}
    {{ return(adapter.dispatch('clean_bigint')(column)) }}
{%- endmacro %}
{% macro default__clean_bigint(column) -%}
    {%- set text = relay_landed_text(column) -%}
    case
        when {{ relay_regexp_matches(text, '^[+-]?[0-9]+([.]0*)?$') }}
            then {{ relay_try_cast(relay_regexp_replace(text, '[.]0*$', ''), dbt.type_bigint()) }}
    end
{%- endmacro %}
{% macro duckdb__clean_bigint(column) -%}
    case when typeof({{ column }}) <> 'VARCHAR' then cast({{ column }} as bigint) else {{ default__clean_bigint(column) }} end
{%- endmacro %}

{% macro clean_double(column) -%}
    {{ return(adapter.dispatch('clean_double')(column)) }}
{%- endmacro %}
{% macro default__clean_double(column, type=dbt.type_float()) -%}
    {%- set text = relay_landed_text(column) -%}
    case
        when {{ relay_regexp_matches('lower(' ~ text ~ ')', '^[+-]?(([0-9]+([.][0-9]*)?|[.][0-9]+)(e[+-]?[0-9]+)?|nan|inf|infinity)$') }}
            then {{ relay_try_cast(text, type) }}
    end
{%- endmacro %}
{#- (dbt's type_float is DuckDB's 4-byte FLOAT.) -#}
{% macro duckdb__clean_double(column) -%}
    case when typeof({{ column }}) <> 'VARCHAR' then cast({{ column }} as double) else {{ default__clean_double(column, 'double') }} end
{%- endmacro %}

{#- A raw column read as the type its sources YAML declares (see above); varchar columns as they landed. -#}
{% macro clean_declared(column, data_type) -%}
    {%- set kind = relay_declared_kind(data_type) -%}
    {%- if kind == 'boolean' -%}{{ clean_boolean(column) }}
    {%- elif kind == 'bigint' -%}{{ clean_bigint(column) }}
    {%- elif kind == 'double' -%}{{ clean_double(column) }}
    {%- elif kind == 'timestamp' -%}{{ clean_timestamp(column) }}
    {%- else -%}{{ column }}
    {%- endif -%}
{%- endmacro %}

{#- Which of the rules above a declared data_type follows: boolean, bigint, double, timestamp, or none (text). -#}
{% macro relay_declared_kind(data_type) -%}
    {%- set base = (data_type or 'varchar') | lower | trim -%}
    {%- set base = base.split('(')[0] | trim -%}
    {%- if base in ('boolean', 'bool') -%}{{ return('boolean') }}
    {%- elif base in ('bigint', 'int', 'integer', 'int64', 'smallint', 'tinyint', 'hugeint', 'int8', 'int4') -%}{{ return('bigint') }}
    {%- elif base in ('double', 'double precision', 'float', 'float8', 'float64', 'real', 'numeric', 'decimal', 'number') -%}{{ return('double') }}
    {%- elif base.startswith('timestamp') or base in ('date', 'datetime') -%}{{ return('timestamp') }}
    {%- else -%}{{ return(none) }}
    {%- endif -%}
{%- endmacro %}

{#- Text meant for people (names). Control characters (U+0000-U+001F, U+007F-U+009F: NUL, bell, escape,
    tabs, line breaks) become a space and whitespace of any kind is trimmed; the result is Unicode NFC, so
    one name typed on two devices compares equal. Everything else is data and stays verbatim: quotes,
    semicolons, braces, text that looks like SQL or JSON, emoji, any length (destinations enforce their
    own limits and a refusal is recorded per row in relay.sync_rejections). -#}
{% macro clean_display_text(column) -%}
    {{ relay_nfc("nullif(trim(" ~ relay_regexp_replace(clean_text(column), '\\p{Cc}+', ' ') ~ "), '')") }}
{%- endmacro %}

{#- Unicode normalisation form C (composed characters): "e" + U+0301 and "é" become the same text. -#}
{% macro relay_nfc(expression) -%}
    {{ return(adapter.dispatch('relay_nfc')(expression)) }}
{%- endmacro %}
{% macro default__relay_nfc(expression) -%}
    {{ expression }}
{%- endmacro %}
{% macro duckdb__relay_nfc(expression) -%}
    nfc_normalize({{ expression }})
{%- endmacro %}
{% macro postgres__relay_nfc(expression) -%}
    normalize({{ expression }}, NFC)
{%- endmacro %}
{% macro bigquery__relay_nfc(expression) -%}
    normalize({{ expression }}, NFC)
{%- endmacro %}

{#- Lower-cased, trimmed email; null when it is not shaped like an address (hashed placeholders,
    typos without "@", a space inside). Invisible characters (controls such as tabs and line breaks,
    zero-width spaces, BOMs) are removed wherever they are, since no address contains them; Unicode is
    kept and normalised to NFC, so "zoë@" typed composed or decomposed is one address. Plus-addressing is
    kept as typed: jane+shop@example.com and jane@example.com are two addresses (mail providers disagree
    on what "+" means, so folding them could merge two people). -#}
{% macro normalize_email(column) -%}
    {%- set address = relay_nfc("nullif(trim(" ~ relay_regexp_replace(clean_text(column), '[\\p{Cc}\\p{Cf}]', '') ~ "), '')") -%}
    case
        when {{ relay_regexp_matches(address, '^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:]]+$') }}
            then lower({{ address }})
    end
{%- endmacro %}

{#- A hashed email: the whole value is an MD5, SHA-1 or SHA-256 hex digest (32, 40 or 64 hex characters,
    any case), as loaders' column hashing and privacy-minded imports land it. Lower-cased, it is a stable
    identifier (records carrying the same digest are one person's) but never an address: nothing can be
    sent to it. It is not matched to plain addresses: which normalisation was hashed is the loader's. -#}
{% macro hashed_email(column) -%}
    case
        when {{ relay_regexp_matches('lower(' ~ clean_text(column) ~ ')', '^([0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64})$') }}
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

{#- Soft-deleted rows never leave staging (the flag may land as text: clean_boolean). -#}
{% macro not_deleted(flag='_fivetran_deleted') -%}
    not coalesce({{ clean_boolean(flag) }}, false)
{%- endmacro %}


{#- The fingerprint of an order's shipping address: lower-cased street + postcode + country (discount rings). -#}
{% macro shipping_address_key(orders) -%}
    case
        when {{ orders }}.shipping_address_1 is not null and {{ orders }}.shipping_zip is not null
            then lower({{ orders }}.shipping_address_1) || '|' || upper(replace({{ orders }}.shipping_zip, ' ', ''))
                || '|' || coalesce({{ orders }}.shipping_country_code, '')
    end
{%- endmacro %}

