{{ config(scope_delete=[['identifier', 'identifier']]) }}

{#- Lookup from any identifier (Shopify customer id, email, phone, anonymous id, Salesforce contact) to
    the person it belongs to, including identifiers the guard refused as links (with the reason) so
    "why is this email not on that customer?" has an answer. -#}

with guarded as (
    select * from {{ ref('int_identifiers_guarded') }}
    where {{ in_scope('identifier', 'identifier') }}
),

resolved as (
    select * from {{ ref('int_identifiers_resolved') }}
),

final as (
    select
        guarded.identifier,
        guarded.identifier_type,
        guarded.identifier_value,
        resolved.customer_key,
        guarded.is_linkable,
        guarded.guard_reason,
        guarded.shopify_account_count,
        guarded.first_seen_at,
        guarded.last_seen_at
    from guarded
    left join resolved
        on guarded.identifier = resolved.identifier
)

select * from final
