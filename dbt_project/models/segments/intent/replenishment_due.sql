{#- Due to rebuy the category they buy most regularly: from the last purchase plus their own interval, for
    the replenishment grace period. Leaves on buying (the due date moves) or when the grace period ends. -#}

with lifecycle as (
    select * from {{ ref('customer_lifecycle') }}
),

final as (
    select
        customer_key,
        replenishment_due_until as member_until,
        replenishment_category as reason
    from lifecycle
    where is_replenishment_due
        and {{ relay_not_excluded('customer_key') }}
)

select * from final
