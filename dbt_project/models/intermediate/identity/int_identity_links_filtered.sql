{{ config(scope_delete=[['from_identifier', 'identifier'], ['to_identifier', 'identifier']]) }}

{#- The edges of the identity graph: two identifiers are linked when one source record carries both
    and both pass the guard (int_identifiers_guarded). Each record links its identifiers to its
    smallest one (a star), which connects them all with n-1 edges instead of n^2. -#}

with observed as (
    {{ observed_in_scope() }}
),

guarded as (
    select * from {{ ref('int_identifiers_guarded') }}
),

linkable_occurrences as (
    select
        observed.record_type,
        observed.record_id,
        observed.identifier
    from observed
    inner join guarded
        on observed.identifier = guarded.identifier
    where guarded.is_linkable
),

record_hubs as (
    select
        record_type,
        record_id,
        min(identifier) as hub_identifier
    from linkable_occurrences
    group by
        record_type,
        record_id
),

final as (
    select distinct
        record_hubs.hub_identifier as from_identifier,
        linkable_occurrences.identifier as to_identifier
    from linkable_occurrences
    inner join record_hubs
        on linkable_occurrences.record_type = record_hubs.record_type
        and linkable_occurrences.record_id = record_hubs.record_id
    where linkable_occurrences.identifier != record_hubs.hub_identifier
        -- Scoped: links between identifiers out of scope are unchanged (and already stored).
        and ({{ in_scope('record_hubs.hub_identifier', 'identifier') }} or {{ in_scope('linkable_occurrences.identifier', 'identifier') }})
)

select * from final
