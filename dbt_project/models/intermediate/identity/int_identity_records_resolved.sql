{{ config(scope_delete=[["record_type || ':' || record_id", 'record']]) }}

{#- Which person each source record belongs to: the customer_key of any of its linkable identifiers
    (they are all in one component, because the record itself links them). Records whose every
    identifier is guarded (e.g. a guest order with only a placeholder email) belong to nobody and are
    absent here. -#}

with observed as (
    {{ observed_in_scope() }}
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
