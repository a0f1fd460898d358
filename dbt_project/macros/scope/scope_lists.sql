{#- Scope lists: filters on a staging key whose values are looked up while the model compiles and
    inlined as literals, so DuckDB can push them down to the raw scan. -#}

{#- A filter on a staging key: `true` when not scoped, else "<column> is one of the values `query` returns
    now". The values are inlined as literals: DuckDB pushes a literal list through staging's deduplicating
    window down to the raw scan, which a subquery would not (a full window over a large raw table).
    `refs` are the models the query reads (ref'd here so dbt orders this model after them). -#}
{% macro in_list(column, query, refs=[], data_type='varchar') -%}
    {%- if model.resource_type == 'unit_test' -%}{{ return('true') }}{%- endif -%}
    {%- set relations = {} -%}
    {%- for name in refs -%}{%- do relations.update({name: ref(name)}) -%}{%- endfor -%}
    {%- if not relay_scoped() -%}
        true
    {%- else -%}
        {%- set ids = run_query(query.format(**relations)).columns[0].values() | reject('none') | list -%}
        {%- if ids | length == 0 -%}
            false
        {%- elif data_type == 'bigint' -%}
            {{ column }} in ({{ ids | map('int') | join(', ') }})
        {%- else -%}
            {{ column }} in ({% for id in ids %}'{{ id | replace("'", "''") }}'{{ ', ' if not loop.last }}{% endfor %})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#- The keys of one record type the loaders changed (see in_list). -#}
{% macro in_changed(column, record_type, data_type='varchar') -%}
    {{ return(in_list(column, "select distinct record_id from {int_scope_changed_records} where record_type = '" ~ record_type ~ "'",
                      ['int_scope_changed_records'], data_type)) }}
{%- endmacro %}


{#- The ids of one record type belonging to the people in scope or re-resolved this run (see in_list). -#}
{% macro in_scope_records(column, record_type, data_type='varchar') -%}
    {{ return(in_list(column,
        "select record_id from {int_identity_records_resolved} where record_type = '" ~ record_type ~ "'"
        ~ " and customer_key in (select customer_key from {int_scope_keys})"
        ~ " union select record_id from {int_scope_records} where record_type = '" ~ record_type ~ "'",
        ['int_identity_records_resolved', 'int_scope_keys', 'int_scope_records'], data_type)) }}
{%- endmacro %}
