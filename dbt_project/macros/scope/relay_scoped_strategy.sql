{#- The incremental strategy of every scoped model: replace exactly the rows in this run's scope.
    Which models use it is set per folder in dbt_project.yml. -#}

{#- incremental_strategy='relay_scoped': delete the target rows in scope, then insert what the model
    selected. Config scope_delete lists (column expression, kind) pairs, any of which puts a row in scope
    (default: customer_key in the people in scope); kind 'self' means "the model selected this value",
    kind 'changed:<record_type>' "the loaders changed this id of that record type".
    Unscoped (not a full refresh, but the previous run did not complete): replace every row. -#}
{% macro get_incremental_relay_scoped_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set columns = arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') -%}
    {%- if relay_scoped() -%}
        {%- set conditions = [] -%}
        {%- for expression, kind in config.get('scope_delete', [['customer_key', 'key']]) -%}
            {%- if kind == 'self' -%}
                {%- do conditions.append(expression ~ ' in (select ' ~ expression ~ ' from ' ~ arg_dict['temp_relation'] ~ ')') -%}
            {%- elif kind.startswith('changed:') -%}
                {#- 'changed:<record_type>': the ids of that record type the loaders changed (staging tables). -#}
                {%- do conditions.append('cast(' ~ expression ~ ' as ' ~ dbt.type_string() ~ ') in (select record_id from '
                    ~ scope_relation('int_scope_changed_records') ~ " where record_type = '" ~ kind[8:] ~ "')") -%}
            {%- else -%}
                {%- set model, column = scope_sets()[kind] -%}
                {%- do conditions.append(expression ~ ' in (select ' ~ column ~ ' from ' ~ scope_relation(model) ~ ')') -%}
            {%- endif -%}
        {%- endfor %}
        delete from {{ target }} where {{ conditions | join(' or ') }};
    {%- else %}
        delete from {{ target }};
    {%- endif %}
    insert into {{ target }} ({{ columns }}) select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}
