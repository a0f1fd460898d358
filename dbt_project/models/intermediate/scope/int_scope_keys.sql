{#- The people a scoped run recomputes: every key the identifiers in scope had before this run (a key
    that merged away must lose its rows) or have now. Empty when not scoped. -#}

with scope as (
    select * from {{ ref('int_scope_identifiers') }}
),

resolved as (
    select * from {{ ref('int_identifiers_resolved') }}
),

keys as (
    select previous_customer_key as customer_key
    from scope
    where previous_customer_key is not null

    union

    select customer_key
    from resolved
    where identifier in (select identifier from scope)
)

select customer_key from keys
