{#- Talon.One audience membership: one row per (person, audience), addressed by the profile's integrationId. Presence = member. -#}

with memberships as (
    select * from {{ ref('segment_memberships') }}
    where {{ in_scope('customer_key') }}
),

customers as (
    select * from {{ ref('customers') }}
    where {{ in_scope('customer_key') }}
),

final as (
    select
        memberships.customer_key,
        customers.talon_one_integration_id as integration_id,
        memberships.talon_one_audience as audience
    from memberships
    inner join customers
        on memberships.customer_key = customers.customer_key
    where memberships.talon_one_audience is not null
)

select * from final
