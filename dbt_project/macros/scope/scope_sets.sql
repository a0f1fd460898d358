{#- Scope sets: the filters a scoped model reads its inputs through, as subqueries on the int_scope_*
    tables (`true` in a run that is not scoped). -#}

{#- Scope sets: kind -> (model, column). changed: records the loader wrote since the previous run;
    record: every record carrying an identifier in scope; identifier: the identity components in scope;
    key: the people in scope. -#}
{% macro scope_sets() -%}
    {{ return({
        'changed': ('int_scope_changed_records', 'record'),
        'record': ('int_scope_records', 'record'),
        'identifier': ('int_scope_identifiers', 'identifier'),
        'key': ('int_scope_keys', 'customer_key'),
    }) }}
{%- endmacro %}


{#- A filter: `true` in an unscoped run, else "<expression> is in the scope set <kind>". The ref() also
    orders the model after the scope set. -#}
{% macro in_scope(expression, kind='key') -%}
    {%- if model.resource_type == 'unit_test' -%}{{ return('true') }}{%- endif -%}  {#- fixtures stand for whole tables -#}
    {%- set scope_model, column = scope_sets()[kind] -%}
    {%- set relation = ref(scope_model) -%}
    {%- if relay_scoped() -%}
        {{ expression }} in (select {{ column }} from {{ relation }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{#- The same set as in_scope_records, as a subquery: for a stored table's id column (a hash join; no list
    to inline, and it filters before the joins and windows of the model). -#}
{% macro in_scope_record_ids(column, record_type) -%}
    {%- if model.resource_type == 'unit_test' -%}{{ return('true') }}{%- endif -%}
    {%- set resolved, keys, records = ref('int_identity_records_resolved'), ref('int_scope_keys'), ref('int_scope_records') -%}
    {%- if relay_scoped() -%}
        cast({{ column }} as {{ dbt.type_string() }}) in (
            select record_id from {{ resolved }}
            where record_type = '{{ record_type }}' and customer_key in (select customer_key from {{ keys }})
            union all
            select record_id from {{ records }} where record_type = '{{ record_type }}'
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{#- The identifiers observed on the records in scope (all of them when not scoped). A join on the two
    columns, not on record_type || ':' || record_id: no key is built per stored row, and the planner filters
    first. The ref() is skipped in unit tests, whose fixtures stand for whole tables (as in in_scope). -#}
{% macro observed_in_scope() -%}
    select observed.*
    from {{ ref('int_identifiers_observed') }} as observed
    {%- if model.resource_type != 'unit_test' %}
    {%- set scope_records = ref('int_scope_records') %}
    {%- if relay_scoped() %}
    inner join {{ scope_records }} as scope_records
        on observed.record_type = scope_records.record_type
        and observed.record_id = scope_records.record_id
    {%- endif %}
    {%- endif %}
{%- endmacro %}
