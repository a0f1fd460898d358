{#- The deterministic holdout (control) group, one row per person: bucket = MD5(var holdout_salt ||
    customer_key) mod 10000, and the person is held out when bucket < var holdout_share * 10000.
    The same key always lands in the same bucket, on every run and engine; changing the salt redraws
    the group deliberately. Held-out people stay in the warehouse and are synced as people (flag
    holdout = true) but never enter a promotional audience. -#}

with customers as (
    select * from {{ ref('customers') }}
    where {{ in_scope('customer_key') }}
),

bucketed as (
    select
        customer_key,
        {{ hash_bucket("'" ~ var('holdout_salt', 'relay-holdout-v1') ~ "' || customer_key", 10000) }} as holdout_bucket
    from customers
),

final as (
    select
        customer_key,
        holdout_bucket,
        holdout_bucket < {{ (var('holdout_share', 0.05) * 10000) | int }} as is_holdout
    from bucketed
)

select * from final
