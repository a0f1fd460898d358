{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'segment_membership_history'}}}) }}
-- Members who have stayed in a segment longer than its meta.segment.ttl: an exit rule that never fires
-- leaves people "stuck" in an audience. Warns, naming them.
with spells as (
    select * from {{ ref('segment_membership_history') }}
    where exited_at is null
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
)

select
    spells.segment,
    spells.customer_key,
    spells.entered_at
from spells
cross join as_of
where false
    {%- for segment in relay_segments() if segment.ttl %}
    or (spells.segment = '{{ segment.name }}'
        and {{ dbt.dateadd(segment.ttl.unit, segment.ttl.amount, 'spells.entered_at') }} < as_of.as_of)
    {%- endfor %}
