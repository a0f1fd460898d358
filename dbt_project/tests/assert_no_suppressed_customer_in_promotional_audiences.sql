{{ config(tags=['gate'], meta={'dagster': {'ref': {'name': 'customer_segments'}}}) }}
-- Gate: blocks every sync on both paths (orchestration/schedules.py). It reads several models, so it names
-- the asset it is a check of: dagster-dbt runs only the tests it can attach to an asset.
-- What the destinations are told agrees: no suppressed or held-out person is a member of a promotional
-- audience in any membership sync (they still appear as people, with their flags).
with promotional as (
    select * from {{ ref('segment_definitions') }}
    where segment_category = 'promotional'
),

excluded as (
    select customer_key
    from {{ ref('customer_segments') }}
    where is_suppressed or is_holdout
),

synced as (
    select
        customer_key,
        audience,
        'customerio' as destination
    from {{ ref('sync_customerio__segment_members') }}

    union all

    select
        customer_key,
        audience,
        'cordial' as destination
    from {{ ref('sync_cordial__list_members') }}

    union all

    select
        customer_key,
        audience,
        'talon_one' as destination
    from {{ ref('sync_talon_one__audience_members') }}
)

select
    synced.destination,
    synced.audience,
    synced.customer_key
from synced
inner join excluded
    on synced.customer_key = excluded.customer_key
inner join promotional
    on synced.audience in (promotional.customerio_segment, promotional.cordial_list, promotional.talon_one_audience)
