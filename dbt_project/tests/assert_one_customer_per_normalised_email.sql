{{ config(meta={'dagster': {'ref': {'name': 'int_identity_records_resolved'}}}) }}  -- reads several models: the asset it is a check of
-- Every source record (account, order, checkout, identify, CRM contact) carrying the same normalised
-- email resolves to one customer, unless the guard refused that email as a link (placeholder, hashed,
-- shared by several accounts).
with observed as (
    select * from {{ ref('int_identifiers_observed') }}
    where identifier_type = 'email'
),

guarded as (
    select * from {{ ref('int_identifiers_guarded') }}
),

records as (
    select * from {{ ref('int_identity_records_resolved') }}
)

select
    observed.identifier,
    count(distinct records.customer_key) as customer_count
from observed
inner join guarded
    on observed.identifier = guarded.identifier
left join records
    on observed.record_type = records.record_type
    and observed.record_id = records.record_id
where guarded.is_linkable
group by observed.identifier
having count(distinct records.customer_key) != 1
    or count(records.customer_key) != count(*)
