{#- The run log: on-run-start opens a row per dbt build or run, on-run-end closes it when every scoped
    model was rebuilt. The next run is scoped only on a closed row (previous_run.sql). Private to these
    macros: Relay's code reads the log through the model dbt_builds (models/builds). -#}

{% macro relay_scope_log() -%}
    relay.dbt_scope_runs
{%- endmacro %}


{#- on-run-start: open this run's row. on-run-end: close it when every scoped model was rebuilt, with the
    loader high-water mark and the clock the scope was computed from. -#}
{% macro relay_scope_run_start() -%}
    {#- An invocation that builds no scoped model (the reports after the syncs) is not a run of the scope:
        logged, it would be the latest, incomplete row, and the run after it could not be scoped. -#}
    {%- if execute and not (graph.nodes.values() | selectattr('unique_id', 'in', selected_resources)
                           | selectattr('config.incremental_strategy', 'equalto', 'relay_scoped') | list) -%}
        {{ return('') }}
    {%- endif %}
    create schema if not exists relay;
    create table if not exists {{ relay_scope_log() }} (
        invocation_id varchar primary key, started_at timestamp, full_refresh boolean,
        loaded_through timestamp, as_of timestamp, completed_at timestamp
    );
    insert into {{ relay_scope_log() }} (invocation_id, started_at, full_refresh)
    values ('{{ invocation_id }}', now()::timestamp, {{ 'true' if flags.FULL_REFRESH else 'false' }});
    {%- if target.type == 'duckdb' and not flags.FULL_REFRESH %}
    {#- A scoped run commits a small change per model, and at DuckDB's default threshold many of those commits
        also checkpoint the database. Checkpointing once, when dbt closes it, costs less in all
        (docs/benchmarks.md); the threshold still bounds the log a crash would replay. #}
    set checkpoint_threshold = '1GB';
    {%- endif %}
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
