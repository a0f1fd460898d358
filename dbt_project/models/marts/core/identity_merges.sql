{#- Keys retired by a merge: when a new link joins two people who each had a customer_key, the key
    minted from the earlier-seen identifier survives and the other is retired. Destinations still
    holding a retired key should merge it into the surviving one (Customer.io merge_customers; a
    Talon.One integrationId cannot be renamed, so the retired profile is simply no longer updated).
    merged_at is the as-of time of the run that first saw the merge. A full refresh of
    int_identifiers_assigned forgets merges (the surviving keys stay the same). -#}

with resolved as (
    select * from {{ ref('int_identifiers_resolved') }}
),

final as (
    select
        issued_key as retired_key,
        customer_key as surviving_key,
        key_changed_at as merged_at,
        identifier as retired_anchor_identifier
    from resolved
    where issued_key is not null
        and issued_key != customer_key
)

select * from final
