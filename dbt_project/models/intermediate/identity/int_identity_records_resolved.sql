{{
    config(
        materialized='incremental',
        incremental_strategy='relay_scoped',
        scope_delete=[["record_type || ':' || record_id", 'record']],
        on_schema_change='sync_all_columns'
    )
}}

{#- Which person each source record belongs to: the customer_key of any of its linkable identifiers
    (they are all in one component, because the record itself links them). Records whose every
    identifier is guarded (e.g. a guest order with only a placeholder email) belong to nobody and are
    absent here. -#}

{#- ref() outside unit tests only: their fixtures stand for whole tables (as in_scope does). #}
{%- set scope_records = ref('int_scope_records') if model.resource_type != 'unit_test' %}

with observed as (
    select observed.*
    from {{ ref('int_identifiers_observed') }} as observed
    {%- if relay_scoped() %}
    -- Scoped: the records in scope (one row each: the join only filters). Joined on the two columns, not
    -- on record_type || ':' || record_id, so no key is built per stored row.
    inner join {{ scope_records }} as scope_records
        on observed.record_type = scope_records.record_type
        and observed.record_id = scope_records.record_id
    {%- endif %}
),

resolved as (
    select * from {{ ref('int_identifiers_resolved') }}
),

final as (
    select
        observed.record_type,
        observed.record_id,
        min(resolved.customer_key) as customer_key
    from observed
    inner join resolved
        on observed.identifier = resolved.identifier
    group by
        observed.record_type,
        observed.record_id
)

select * from final
