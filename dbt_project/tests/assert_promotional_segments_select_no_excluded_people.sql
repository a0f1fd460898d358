{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'segment_memberships'}}}) }}
-- A promotional segment model that selects suppressed or held-out people: segment_memberships leaves
-- them out whatever the model says, so nobody receives an offer by mistake, but the model's SQL is
-- careless (its own relation, queried directly, disagrees with what is synced). Warns, naming them.
-- depends_on: {{ ref('segment_memberships') }}
{%- set promotional = relay_segments() | selectattr('category', 'equalto', 'promotional') | map(attribute='name') | list %}

with excluded as (
    select customer_key
    from {{ ref('customer_segments') }}
    where is_suppressed or is_holdout
),

selected as (
    {%- for name in registered_segments() %}
    {%- if name in promotional %}
    select '{{ name }}' as segment, customer_key from {{ ref(name) }}
    union all
    {%- else %}
    -- depends_on: {{ ref(name) }}
    {%- endif %}
    {%- endfor %}
    select
        cast(null as {{ dbt.type_string() }}) as segment,
        cast(null as {{ dbt.type_string() }}) as customer_key
    where 1 = 0
)

select
    selected.segment,
    selected.customer_key
from selected
inner join excluded
    on selected.customer_key = excluded.customer_key
