{#- Cordial list membership: one row per (person, list), addressed by the contact's email. Presence = member. People without a
    usable email cannot be addressed in Cordial and are absent. -#}

with memberships as (
    select * from {{ ref('segment_memberships') }}
    where {{ in_scope('customer_key') }}
),

customers as (
    select * from {{ ref('customers') }}
    where cordial_email is not null
        and {{ in_scope('customer_key') }}
),

final as (
    select
        memberships.customer_key,
        customers.cordial_email as email,
        memberships.cordial_list as audience
    from memberships
    inner join customers
        on memberships.customer_key = customers.customer_key
    where memberships.cordial_list is not null
)

select * from final
