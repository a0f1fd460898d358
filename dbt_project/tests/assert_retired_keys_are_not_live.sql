{{ config(tags=['gate']) }}  -- also run on the frequent path (orchestration/schedules.py)
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
