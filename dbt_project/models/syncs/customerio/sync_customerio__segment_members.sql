{#- Customer.io manual segment membership: one row per (person, segment). Presence = member. -#}

with memberships as (
    select * from {{ ref('segment_memberships') }}
    where {{ in_scope('customer_key') }}
),

final as (
    select
        customer_key,
        customerio_segment as audience
    from memberships
    where customerio_segment is not null
)

select * from final
