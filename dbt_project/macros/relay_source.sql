{#-
  Select a raw table through the contract declared in its sources YAML.

  * Every declared column is selected by name; an optional column missing from the landed table
    becomes a typed NULL, a missing required column stops the build naming table and column.
  * Extra landed columns are ignored.
  * A source or table whose YAML says `meta: {optional: true}` may be absent (or switched off with the
    var `relay_using_<source>` or `relay_using_<source>_<table>`): then the result is an empty relation with the declared columns, so
    downstream models build unchanged.
  * With the var `as_of` (relay build --as-of T) the table reads as it stood at T: rows whose `as_of_field`
    (table meta; a list means the earliest of them) is after T do not exist, nor rows whose parent
    (`as_of_parent: {table, key, parent_key}`) does not; a column whose meta says `as_of: happened` (a
    cancellation, a completion) reads null when it happened after T. Loaders keep the newest version of a
    row only, so other values (a name, a consent state) are as landed.
  * Raw tables may be Parquet/CSV/JSON files: either dbt-duckdb's own `meta.external_location` on the
    source, or the shortcut var `<source>_external_location` (e.g. "/landing/shopify/{name}.parquet").
-#}
{% macro relay_source(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute -%}
        select * from {{ relation }}
    {%- else -%}
        {%- set landing = relay_source_landing(source_name, table_name) -%}
        {%- set node, relation, label, present = landing.node, landing.relation, landing.label, landing.present -%}
        {%- if present is none -%}
            select
            {%- for column in node.columns.values() %}
                cast(null as {{ column.data_type }}) as {{ adapter.quote(column.name) }}{{ "," if not loop.last }}
            {%- endfor %}
            where 1 = 0
        {%- else -%}
            {%- set missing_required = [] -%}
            {%- for column in node.columns.values() -%}
                {%- set meta = (column.config.meta if column.config is defined and column.config.meta else column.meta) or {} -%}
                {%- if column.name | lower not in present and meta.get('required', false) -%}
                    {%- do missing_required.append(column.name ~ ' (' ~ column.data_type ~ ')') -%}
                {%- endif -%}
            {%- endfor -%}
            {%- if missing_required -%}
                {{ exceptions.raise_compiler_error("Raw table " ~ label ~ " (" ~ relation ~ ") is missing required column(s): " ~ missing_required | join(', ') ~ ". See the raw-data contract in the README.") }}
            {%- endif -%}
            {%- set as_of = var('as_of', none) -%}
            {%- set as_of_literal = "cast('" ~ as_of ~ "' as " ~ dbt.type_timestamp() ~ ")" if as_of else none -%}
            select
            {%- for column in node.columns.values() %}
                {%- set meta = (column.config.meta if column.config is defined and column.config.meta else column.meta) or {} %}
                {% if column.name | lower in present -%}
                    {%- set landed = adapter.quote(present[column.name | lower]) -%}
                    {%- if as_of and meta.get('as_of') == 'happened' -%}
                    case when {{ clean_timestamp(landed) }} > {{ as_of_literal }} then null else {{ landed }} end as {{ adapter.quote(column.name) }}
                    {%- else -%}
                    {{ landed }} as {{ adapter.quote(column.name) }}
                    {%- endif -%}
                {%- else -%}
                    cast(null as {{ column.data_type }}) as {{ adapter.quote(column.name) }}
                {%- endif %}{{ "," if not loop.last }}
            {%- endfor %}
            from {{ relation }}
            {%- if as_of %}
            where {{ relay_source_as_of_filter(source_name, node, present, as_of_literal) }}
            {%- endif %}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#- Where a raw table lands and which of its columns are there (`present`: none when an optional table
    is absent or switched off). -#}
{% macro relay_source_landing(source_name, table_name) -%}
    {%- set node = graph.sources['source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name] -%}
    {%- set optional = (node.source_meta or {}).get('optional', false) or (node.config.meta or {}).get('optional', false) -%}
    {%- set label = source_name ~ '.' ~ table_name -%}
    {%- set location = var(source_name ~ '_external_location', none) -%}
    {%- set relation = "'" ~ location | replace('{name}', table_name) | replace("'", "''") ~ "'" if location else source(source_name, table_name) -%}
    {%- set present = relay_source_columns(relation, source_name, label, optional, location or relation.external) -%}
    {{ return({'node': node, 'relation': relation, 'label': label, 'present': present}) }}
{%- endmacro %}


{% macro relay_source_present(source_name, table_name) -%}
    {{ return(relay_source_landing(source_name, table_name).present is not none) }}
{%- endmacro %}


{#- Landed column names (lower-cased -> as landed), or none when an optional table is absent or switched
    off (var relay_using_<source>, or relay_using_<source>_<table> for one table). The catalog is asked
    directly rather than through dbt's relation cache, which a model compiled while another thread
    created a schema could see without the raw schemas. -#}
{% macro relay_source_columns(relation, source_name, label, optional, external) -%}
    {%- set table_name = label.split('.')[1] -%}
    {%- if optional and not (var('relay_using_' ~ source_name, true) and var('relay_using_' ~ source_name ~ '_' ~ table_name, true)) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if external -%}
        {%- set described = run_query('describe select * from ' ~ relation ~ ' limit 0') -%}
        {%- set names = described.columns[0].values() -%}
    {%- else -%}
        {%- set found = run_query(
            "select column_name from information_schema.columns"
            ~ " where lower(table_catalog) = lower('" ~ relation.database ~ "')"
            ~ " and lower(table_schema) = lower('" ~ relation.schema ~ "')"
            ~ " and lower(table_name) = lower('" ~ relation.identifier ~ "')"
            ~ " order by ordinal_position") -%}
        {%- set names = found.columns[0].values() -%}
        {%- if names | length == 0 -%}
            {%- if optional -%}
                {{ log("Optional raw table " ~ label ~ " not found: building with an empty relation.", info=true) }}
                {{ return(none) }}
            {%- endif -%}
            {{ exceptions.raise_compiler_error("Raw table " ~ label ~ " not found at " ~ relation ~ ". Load it, or point the vars " ~ source_name ~ "_database / " ~ source_name ~ "_schema at where it lives.") }}
        {%- endif -%}
    {%- endif -%}
    {%- set present = {} -%}
    {%- for name in names -%}{%- do present.update({name | lower: name}) -%}{%- endfor -%}
    {{ return(present) }}
{%- endmacro %}


{#- The rows of a raw table that existed at the as-of time (see relay_source). -#}
{% macro relay_source_as_of_filter(source_name, node, present, as_of_literal) -%}
    {%- set meta = node.config.meta or {} -%}
    {%- set field = meta.get('as_of_field') -%}
    {%- set parent = meta.get('as_of_parent') -%}
    {%- set conditions = [] -%}
    {%- if field -%}
        {%- set fields = [field] if field is string else field -%}
        {%- set stamps = [] -%}
        {%- for name in fields if name | lower in present -%}
            {%- do stamps.append(clean_timestamp(adapter.quote(present[name | lower]))) -%}
        {%- endfor -%}
        {%- if stamps -%}
            {%- do conditions.append('coalesce(' ~ (stamps[0] if stamps | length == 1 else 'least(' ~ stamps | join(', ') ~ ')') ~ ' <= ' ~ as_of_literal ~ ', true)') -%}
        {%- endif -%}
    {%- endif -%}
    {%- if parent -%}
        {%- do conditions.append('cast(' ~ adapter.quote(present[parent.key | lower]) ~ ' as ' ~ dbt.type_string() ~ ') in (select cast('
            ~ adapter.quote(parent.get('parent_key', 'id')) ~ ' as ' ~ dbt.type_string() ~ ') from ('
            ~ relay_source(source_name, parent.table) ~ ') as as_of_parent)') -%}
    {%- endif -%}
    {{ conditions | join(' and ') if conditions else 'true' }}
{%- endmacro %}
