{{ config(scope_delete=[['identifier', 'identifier']]) }}

{#- Every identifier in this run's identity graph with the stable customer_key of its person (the
    assignment memory also holds identifiers that have since left the graph; they are dropped here).
    Identifiers of components made only of anonymous ids have no key and are left out. -#}

with clustered as (
    select * from {{ ref('int_identifiers_clustered') }}
    where {{ in_scope('identifier', 'identifier') }}
),

assigned as (
    select * from {{ ref('int_identifiers_assigned') }}
),

final as (
    select
        clustered.identifier,
        clustered.identifier_type,
        clustered.identifier_value,
        clustered.first_seen_at,
        clustered.identifier_rank,
        assigned.customer_key,
        assigned.issued_key,
        assigned.first_assigned_at,
        assigned.key_changed_at
    from clustered
    inner join assigned
        on clustered.identifier = assigned.identifier
    where assigned.customer_key is not null
)

select * from final
