{{ config(tags=['gate'], meta={'dagster': {'ref': {'name': 'customers'}}}) }}
-- Gate: blocks every sync on both paths (orchestration/schedules.py). It reads several models, so it names
-- the asset it is a check of: dagster-dbt runs only the tests it can attach to an asset.
-- A key retired by a merge never names a current customer, and every current key was minted from an
-- identifier (its anchor) that belongs to the same person.
select
    merges.retired_key as customer_key,
    'retired key is still a customer' as problem
from {{ ref('identity_merges') }} as merges
inner join {{ ref('customers') }} as customers
    on merges.retired_key = customers.customer_key

union all

select
    customers.customer_key,
    'no anchor identifier in the person' as problem
from {{ ref('customers') }} as customers
left join {{ ref('int_identifiers_resolved') }} as anchors
    on customers.customer_key = anchors.issued_key
    and customers.customer_key = anchors.customer_key
where anchors.identifier is null
