{{ config(tags=['after_syncs']) }}
{#- The weekly audit seed 001 asks for, every day: per destination audience (Customer.io segment, Cordial list,
    Talon.One audience) and day of the last var audience_health_days up to the clock's: the segment's
    members at the day's end, entries and exits that day, and the size's drift from its trailing 7-day
    mean. On the clock's day also what the destination holds, from the ledger the syncs wrote (this model
    runs after them): the match rate (members the destination acknowledged / members planned), members it
    cannot hold (no usable identifier for it), stuck members (in the segment longer than its meta ttl),
    and exits not acknowledged yet, of which the destination refused some. -#}

{%- set days = var('audience_health_days', 28) %}
{%- set membership_syncs = {'customerio': 'sync_customerio__segment_members', 'cordial': 'sync_cordial__list_members',
                            'talon_one': 'sync_talon_one__audience_members'} %}

with definitions as (
    select * from {{ ref('segment_definitions') }}
),

audiences as (
    {%- for destination, column in segment_destinations().items() %}
    select segment, '{{ destination }}' as destination, {{ column }} as audience
    from definitions
    where {{ column }} is not null
    {{ 'union all' if not loop.last }}
    {%- endfor %}
),

as_of as (
    select as_of, {{ dbt.date_trunc('day', 'as_of') }} as today
    from {{ ref('int_as_of') }}
),

days as (
    {%- for n in range(days) %}
    select {{ dbt.dateadd('day', -n, 'as_of.today') }} as day from as_of
    {{ 'union all' if not loop.last }}
    {%- endfor %}
),

spells as (
    select * from {{ ref('segment_membership_history') }}
),

daily as (
    select
        audiences.destination,
        audiences.audience,
        audiences.segment,
        days.day,
        count(case when spells.entered_at < {{ dbt.dateadd('day', 1, 'days.day') }}
                   and (spells.exited_at is null or spells.exited_at >= {{ dbt.dateadd('day', 1, 'days.day') }}) then 1 end) as members,
        count(case when spells.entered_at >= days.day and spells.entered_at < {{ dbt.dateadd('day', 1, 'days.day') }} then 1 end) as entries,
        count(case when spells.exited_at >= days.day and spells.exited_at < {{ dbt.dateadd('day', 1, 'days.day') }} then 1 end) as exits
    from audiences
    cross join days
    left join spells
        on audiences.segment = spells.segment
    group by 1, 2, 3, 4
),

drift as (
    select
        *,
        avg(members) over (partition by destination, audience order by day rows between 7 preceding and 1 preceding) as trailing_7d_members
    from daily
),

planned as (
    {%- for destination, sync in membership_syncs.items() %}
    select '{{ destination }}' as destination, audience, customer_key from {{ ref(sync) }}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
),

held as (
    select
        case state.sync_name
            {%- for destination, sync in membership_syncs.items() %}
            when '{{ sync }}' then '{{ destination }}'
            {%- endfor %}
        end as destination,
        state.sync_name,
        {{ json_text('state.payload', 'audience') }} as audience,
        {{ json_text('state.payload', 'customer_key') }} as customer_key,
        state.record_key,
        state.last_synced_at
    from ({{ relay_ledger('sync_state', {'sync_name': dbt.type_string(), 'record_key': dbt.type_string(),
                                          'payload': dbt.type_string(), 'last_synced_at': dbt.type_timestamp()}) }}) as state
    where state.sync_name in ({% for sync in membership_syncs.values() %}'{{ sync }}'{{ ', ' if not loop.last }}{% endfor %})
),

refused_exits as (
    select distinct sync_name, record_key, rejected_at
    from ({{ relay_ledger('sync_rejections', {'sync_name': dbt.type_string(), 'record_key': dbt.type_string(),
                                              'kind': dbt.type_string(), 'rejected_at': dbt.type_timestamp()}) }}) as rejections
    where kind = 'remove'
),

current_members as (
    select
        memberships.segment,
        memberships.customer_key,
        spells.entered_at
    from {{ ref('segment_memberships') }} as memberships
    left join spells
        on memberships.segment = spells.segment
        and memberships.customer_key = spells.customer_key
        and spells.exited_at is null
),

delivery as (
    select
        audiences.destination,
        audiences.audience,
        count(distinct planned.customer_key) as planned_members,
        count(distinct case when held.customer_key is not null then planned.customer_key end) as acknowledged_members
    from audiences
    left join planned
        on audiences.destination = planned.destination
        and audiences.audience = planned.audience
    left join held
        on planned.destination = held.destination
        and planned.audience = held.audience
        and planned.customer_key = held.customer_key
    group by 1, 2
),

reach as (
    select
        audiences.destination,
        audiences.audience,
        count(current_members.customer_key) as segment_members,
        count(case when planned.customer_key is null and current_members.customer_key is not null then 1 end) as unreachable_members,
        count(case when false
            {%- for segment in relay_segments() if segment.ttl %}
            or (current_members.segment = '{{ segment.name }}'
                and {{ dbt.dateadd(segment.ttl.unit, segment.ttl.amount, 'current_members.entered_at') }} < as_of.as_of)
            {%- endfor %}
            then 1 end) as stuck_members
    from audiences
    cross join as_of
    left join current_members
        on audiences.segment = current_members.segment
    left join planned
        on audiences.destination = planned.destination
        and audiences.audience = planned.audience
        and current_members.customer_key = planned.customer_key
    group by 1, 2
),

exits as (
    select
        held.destination,
        held.audience,
        count(*) as exits_pending,
        count(refused_exits.record_key) as exits_refused
    from held
    left join planned
        on held.destination = planned.destination
        and held.audience = planned.audience
        and held.customer_key = planned.customer_key
    left join refused_exits
        on held.sync_name = refused_exits.sync_name
        and held.record_key = refused_exits.record_key
        and refused_exits.rejected_at >= held.last_synced_at
    where planned.customer_key is null
    group by 1, 2
),

final as (
    select
        drift.day,
        drift.destination,
        drift.audience,
        drift.segment,
        drift.members,
        drift.entries,
        drift.exits,
        drift.trailing_7d_members,
        drift.members * 1.0 / nullif(drift.trailing_7d_members, 0) - 1 as size_drift,
        case when drift.day = as_of.today then delivery.planned_members end as planned_members,
        case when drift.day = as_of.today then delivery.acknowledged_members end as acknowledged_members,
        case when drift.day = as_of.today
             then coalesce(delivery.acknowledged_members * 1.0 / nullif(delivery.planned_members, 0), 1) end as match_rate,
        case when drift.day = as_of.today then reach.unreachable_members end as unreachable_members,
        case when drift.day = as_of.today
             then coalesce(reach.unreachable_members * 1.0 / nullif(reach.segment_members, 0), 0) end as unreachable_share,
        case when drift.day = as_of.today then reach.stuck_members end as stuck_members,
        case when drift.day = as_of.today then coalesce(exits.exits_pending, 0) end as exits_pending,
        case when drift.day = as_of.today then coalesce(exits.exits_refused, 0) end as exits_refused
    from drift
    cross join as_of
    left join delivery
        on drift.destination = delivery.destination
        and drift.audience = delivery.audience
    left join reach
        on drift.destination = reach.destination
        and drift.audience = reach.audience
    left join exits
        on drift.destination = exits.destination
        and drift.audience = exits.audience
)

select * from final
