{#- The source records a scoped run re-resolves: every record carrying an identifier in scope, plus the
    changed records (a deleted one must leave). Empty when not scoped. -#}

with scope as (
    select identifier from {{ ref('int_scope_identifiers') }}
),

changed as (
    select * from {{ ref('int_scope_changed_records') }}
    where record_type != 'segment_track'
),

observed as (
    select * from {{ ref('int_identifiers_observed') }}
),

records as (
    select
        record_type,
        record_id
    from observed
    where identifier in (select identifier from scope)

    union

    select
        record_type,
        record_id
    from changed
)

select
    record_type,
    record_id,
    record_type || ':' || record_id as record
from records
