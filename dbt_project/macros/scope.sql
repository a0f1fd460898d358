{#-
  Scoped runs: the frequent path recomputes only the people whose data changed.

  A run is scoped when it is not --full-refresh and the previous run recorded in relay.dbt_scope_runs
  completed (every scoped model rebuilt successfully). Then the models under models/intermediate/scope
  work out what changed since that run's loader high-water mark (int_scope_changed_records), which identity
  components that touches (int_scope_identifiers) and which people (int_scope_keys: theirs, ring
  neighbours, and everyone a time boundary passed between the two clocks). Every model materialized
  with incremental_strategy='relay_scoped' reads only that scope and replaces exactly the scope's rows
  (get_incremental_relay_scoped_sql). The result equals a full rebuild (tests/test_scoped_runs.py).

  A run that is not scoped recomputes everything: with --full-refresh (the daily job) by rebuilding each
  table, otherwise by replacing every row. A run that fails or is cut off leaves its row incomplete, so
  the run after it is not scoped: a partial scoped run can never be built upon.
-#}

{% macro relay_scope_log() -%}
    relay.dbt_scope_runs
{%- endmacro %}


{#- The previous run's row (loaded_through, as_of), or none when this run cannot be scoped. One small query
    per call (a few per model): jinja keeps no state between macro calls. A run with the var as_of reads
    the raw tables as they stood then (relay_source), so it recomputes everything and the run after it too. -#}
{% macro relay_previous_run() -%}
    {%- if not execute or flags.FULL_REFRESH or model.resource_type == 'unit_test' or var('as_of', none) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set log_relation = adapter.get_relation(database=target.database, schema='relay', identifier='dbt_scope_runs') -%}
    {%- if log_relation is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set rows = run_query(
        "select loaded_through, as_of, completed_at is not null from " ~ relay_scope_log() ~
        " where invocation_id != '" ~ invocation_id ~ "' order by started_at desc limit 1").rows -%}
    {%- if rows | length == 0 or not rows[0][2] or rows[0][0] is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return({'loaded_through': rows[0][0], 'as_of': rows[0][1]}) }}
{%- endmacro %}


{% macro relay_scoped() -%}
    {{ return(relay_previous_run() is not none) }}
{%- endmacro %}


{#- A model's relation from the graph, without ref(): for reading a table's previous contents before this
    run rebuilds it (ref would make it upstream of the scope models), and in hooks. -#}
{% macro scope_relation(name) -%}
    {%- set node = graph.nodes['model.' ~ project_name ~ '.' ~ name] -%}
    {{ return(api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias)) }}
{%- endmacro %}


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


{#- Ids of the rows of a raw table the loader wrote after `since`, as (record_type, record_id). -#}
{% macro scope_changed_ids(since, source_name, table, id_expression, record_type, column='_fivetran_synced') %}
    select
        '{{ record_type }}' as record_type,
        {{ id_expression }} as record_id
    from ({{ relay_source(source_name, table) }})
    where {{ clean_timestamp(column) }} > {{ since }}
{%- endmacro %}


{#- on-run-start: open this run's row. on-run-end: close it when every scoped model was rebuilt, with the
    loader high-water mark and the clock the scope was computed from. -#}
{% macro relay_scope_run_start() -%}
    create schema if not exists relay;
    create table if not exists {{ relay_scope_log() }} (
        invocation_id varchar primary key, started_at timestamp, full_refresh boolean,
        loaded_through timestamp, as_of timestamp, completed_at timestamp
    );
    insert into {{ relay_scope_log() }} (invocation_id, started_at, full_refresh)
    values ('{{ invocation_id }}', now()::timestamp, {{ 'true' if flags.FULL_REFRESH else 'false' }});
{%- endmacro %}


{% macro relay_scope_run_end(results) -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set succeeded = [] -%}
    {%- for result in results if result.status in ('success', 'pass', 'warn') -%}
        {%- do succeeded.append(result.node.unique_id) -%}
    {%- endfor -%}
    {%- set failed = results | selectattr('status', 'in', ['error', 'fail', 'skipped', 'runtime error']) | list -%}
    {%- set missing = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.config.incremental_strategy == 'relay_scoped' and node.unique_id not in succeeded -%}
        {%- do missing.append(node.unique_id) -%}
    {%- endfor -%}
    {%- if failed | length == 0 and missing | length == 0 and not var('as_of', none) -%}
        update {{ relay_scope_log() }}
        set loaded_through = (select loaded_through from {{ scope_relation('int_scope_watermark') }}),
            as_of = (select as_of from {{ scope_relation('int_as_of') }}),
            completed_at = now()::timestamp
        where invocation_id = '{{ invocation_id }}'
    {%- endif -%}
{%- endmacro %}


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


{#- A payment card's fingerprint (BIN + last four digits) from a raw Shopify transaction, as staging
    derives card_bin and card_last4. -#}
{% macro raw_card_fingerprint() -%}
    {{ clean_text('payment_credit_card_bin') }} || '-' || right({{ relay_regexp_replace(clean_text('payment_credit_card_number'), '[^0-9]', '') }}, 4)
{%- endmacro %}
