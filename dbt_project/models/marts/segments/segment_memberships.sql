{#- Current membership: one row per (customer_key, segment) for every segment model (meta.segment), with
    the destinations' names. Presence = member. The guardrails hold here, whatever a segment selects:
      - members are live customers (a key that merged away or never existed is dropped);
      - a promotional segment never contains a suppressed or held-out person;
      - a person is in a segment once (the latest member_until wins).
    member_until and reason come from the segment model when it has those columns. A daily segment keeps
    the previous run's rows in a scoped (frequent) run. -#}

{%- set segments = relay_segments() %}
{%- if execute %}
    {%- do check_registered_segments(segments) %}
{%- endif %}
{%- set scoped = relay_scoped() %}

with people as (
    select * from {{ ref('customer_segments') }}
    where {{ in_scope('customer_key') }}
),

definitions as (
    select * from {{ ref('segment_definitions') }}
),

selected as (
    {%- for name in registered_segments() %}
    {%- set segment = (segments | selectattr('name', 'equalto', name) | list or [{}])[0] %}
    {%- if scoped and segment.schedule == 'daily' %}
    select customer_key, segment, member_until, reason
    from {{ this }}
    where segment = '{{ name }}'
        and {{ in_scope('customer_key') }}
    {%- else %}
    {%- set columns = adapter.get_columns_in_relation(ref(name)) | map(attribute='name') | map('lower') | list if execute else [] %}
    select
        customer_key,
        '{{ name }}' as segment,
        cast({{ 'member_until' if 'member_until' in columns else 'null' }} as {{ dbt.type_timestamp() }}) as member_until,
        cast({{ 'reason' if 'reason' in columns else 'null' }} as {{ dbt.type_string() }}) as reason
    from {{ ref(name) }}
    where {{ in_scope('customer_key') }}
    {%- endif %}
    union all
    {%- endfor %}
    select
        cast(null as {{ dbt.type_string() }}) as customer_key,
        cast(null as {{ dbt.type_string() }}) as segment,
        cast(null as {{ dbt.type_timestamp() }}) as member_until,
        cast(null as {{ dbt.type_string() }}) as reason
    where 1 = 0
),

members as (
    select
        customer_key,
        segment,
        max(member_until) as member_until,
        max(reason) as reason
    from selected
    group by customer_key, segment
),

final as (
    select
        members.customer_key,
        members.segment,
        definitions.segment_category,
        members.member_until,
        members.reason,
        definitions.customerio_segment,
        definitions.cordial_list,
        definitions.talon_one_audience
    from members
    inner join people
        on members.customer_key = people.customer_key
    inner join definitions
        on members.segment = definitions.segment
    where not (definitions.segment_category = 'promotional' and (people.is_suppressed or people.is_holdout))
)

select * from final
