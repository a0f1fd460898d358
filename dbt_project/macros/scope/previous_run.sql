{#-
  Whether this run is scoped, and the tables as the previous run left them.

  Scoped runs: the frequent path recomputes only the people whose data changed.

  A run is scoped when it is not --full-refresh and the previous run recorded in the run log (run_log.sql)
  completed (every scoped model rebuilt successfully). Then the models under models/intermediate/scope
  work out what changed since that run's loader high-water mark (int_scope_changed_records), which identity
  components that touches (int_scope_identifiers) and which people (int_scope_keys: theirs, ring
  neighbours, and everyone a time boundary (macros/time_boundaries.sql) passed between the two clocks). Every
  scoped model (dbt_project.yml sets them per folder) reads only that scope through the filters in
  scope_sets.sql and scope_lists.sql, and replaces exactly the scope's rows (relay_scoped_strategy.sql). The result equals a full rebuild (tests/test_scoped_runs.py).

  A run that is not scoped recomputes everything: with --full-refresh (the daily job) by rebuilding each
  table, otherwise by replacing every row. A run that fails or is cut off leaves its row incomplete, so
  the run after it is not scoped: a partial scoped run can never be built upon.
-#}

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


{#- Whether this model reads only the scope. Not on the first build of an incremental model (a model just
    added, or a table dropped): a table that starts with only the people in scope would never get the rest. -#}
{% macro relay_scoped() -%}
    {%- if execute and model.resource_type == 'model' and model.config.materialized == 'incremental'
          and not is_incremental() -%}
        {{ return(false) }}
    {%- endif -%}
    {{ return(relay_previous_run() is not none) }}
{%- endmacro %}


{#- A model's relation from the graph, without ref(): for reading a table's previous contents before this
    run rebuilds it (ref would make it upstream of the scope models), and in hooks. -#}
{% macro scope_relation(name) -%}
    {%- set node = graph.nodes['model.' ~ project_name ~ '.' ~ name] -%}
    {{ return(api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias)) }}
{%- endmacro %}
