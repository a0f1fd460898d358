{#- The identity components a scoped run recomputes, one row per identifier, with the person key it had
    before this run. Closed so that recomputing only these gives what a full rebuild would:
      1. identifiers changed records carry, now or before this run;
      2. every identifier of every record carrying one of those (a guard change can link or unlink them);
      3. every identifier of the previous components of those.
    Components are independent, so nothing outside this set can change. Empty when not scoped. -#}

{%- set scoped = relay_scoped() %}

with changed as (
    select * from {{ ref('int_scope_changed_records') }}
    where record_type != 'segment_track'
),

observed as (
    select * from {{ ref('int_identifiers_observed') }}
),

{%- if scoped %}

seeds as (
    select previous_identifier as identifier
    from changed
    where previous_identifier is not null

    union

    select observed.identifier
    from observed
    inner join changed
        on observed.record_type = changed.record_type
        and observed.record_id = changed.record_id
),

carrying_records as (
    select distinct
        record_type,
        record_id
    from observed
    where identifier in (select identifier from seeds)
),

touched as (
    select identifier
    from seeds

    union

    select observed.identifier
    from observed
    inner join carrying_records
        on observed.record_type = carrying_records.record_type
        and observed.record_id = carrying_records.record_id
),

previous_clustered as (
    select * from {{ scope_relation('int_identifiers_clustered') }}
),

scope as (
    select identifier
    from touched

    union

    select identifier
    from previous_clustered
    where component_id in (
        select component_id
        from previous_clustered
        where identifier in (select identifier from touched)
    )
)

select
    scope.identifier,
    previous_resolved.customer_key as previous_customer_key
from scope
left join {{ scope_relation('int_identifiers_resolved') }} as previous_resolved
    on scope.identifier = previous_resolved.identifier

{%- else %}

empty as (
    select
        cast(null as {{ dbt.type_string() }}) as identifier,
        cast(null as {{ dbt.type_string() }}) as previous_customer_key
    where 1 = 0
)

select * from empty
{%- endif %}
