{#-
  Select a raw table through the contract declared in its sources YAML.

  * Every declared column is selected by name; an optional column missing from the landed table
    becomes a typed NULL, a missing required column stops the build naming table and column.
  * Extra landed columns are ignored.
  * A source whose YAML says `meta: {optional: true}` may be absent (or switched off with the var
    `relay_using_<source>`): then the result is an empty relation with the declared columns, so
    downstream models build unchanged.
  * Raw tables may be Parquet/CSV/JSON files: either dbt-duckdb's own `meta.external_location` on the
    source, or the shortcut var `<source>_external_location` (e.g. "/landing/shopify/{name}.parquet").
-#}
{% macro relay_source(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute -%}
        select * from {{ relation }}
    {%- else -%}
        {%- set node = graph.sources['source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name] -%}
        {%- set source_meta = node.source_meta or {} -%}
        {%- set optional = source_meta.get('optional', false) or (node.config.meta or {}).get('optional', false) -%}
        {%- set label = source_name ~ '.' ~ table_name -%}
        {%- set location = var(source_name ~ '_external_location', none) -%}
        {%- if location -%}
            {%- set relation = "'" ~ location | replace('{name}', table_name) | replace("'", "''") ~ "'" -%}
        {%- endif -%}
        {%- set present = relay_source_columns(relation, source_name, label, optional, location or relation.external) -%}
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
            select
            {%- for column in node.columns.values() %}
                {% if column.name | lower in present -%}
                    {{ adapter.quote(present[column.name | lower]) }} as {{ adapter.quote(column.name) }}
                {%- else -%}
                    cast(null as {{ column.data_type }}) as {{ adapter.quote(column.name) }}
                {%- endif %}{{ "," if not loop.last }}
            {%- endfor %}
            from {{ relation }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#- Landed column names (lower-cased -> as landed), or none when an optional source is absent/disabled. -#}
{% macro relay_source_columns(relation, source_name, label, optional, external) -%}
    {%- if optional and not var('relay_using_' ~ source_name, true) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if external -%}
        {%- set described = run_query('describe select * from ' ~ relation ~ ' limit 0') -%}
        {%- set names = described.columns[0].values() -%}
    {%- else -%}
        {%- set existing = adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier) -%}
        {%- if existing is none -%}
            {%- if optional -%}
                {{ log("Optional raw table " ~ label ~ " not found: building with an empty relation.", info=true) }}
                {{ return(none) }}
            {%- endif -%}
            {{ exceptions.raise_compiler_error("Raw table " ~ label ~ " not found at " ~ relation ~ ". Load it, or point the vars " ~ source_name ~ "_database / " ~ source_name ~ "_schema at where it lives.") }}
        {%- endif -%}
        {%- set names = adapter.get_columns_in_relation(existing) | map(attribute='name') | list -%}
    {%- endif -%}
    {%- set present = {} -%}
    {%- for name in names -%}{%- do present.update({name | lower: name}) -%}{%- endfor -%}
    {{ return(present) }}
{%- endmacro %}
