{#- One row per dbt build or run: what the sync engine reads to tell which builds ran since a sync's last
    run and whether each completed. A view over the scope macros' own log (macros/scope/run_log.sql), so
    it is current at any moment, also while a build's on-run-end closes its row; the log's other columns
    stay private to the scope macros. -#}

with runs as (
    select * from {{ relay_scope_log() }}
),

final as (
    select
        invocation_id,
        started_at,
        full_refresh,
        completed_at
    from runs
)

select * from final
