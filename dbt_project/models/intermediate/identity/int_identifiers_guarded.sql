{{ config(scope_delete=[['identifier', 'identifier']]) }}

{#- One row per distinct identifier, with the guard that decides whether it may link records.
    Only soft identifiers (email, hashed email, phone, anonymous id) are guarded; account and contact ids always link.
    An identifier is NOT a link when it is
      * a placeholder: an email on var identity_placeholder_emails, or whose local part (before any
        "+tag") is on identity_placeholder_email_local_parts; a phone on identity_placeholder_phones;
      * hashed: an email whose local part is 32+ hex characters (an MD5/SHA digest, not an address);
      * shared: seen on more distinct Shopify accounts than var identity_max_accounts_per_identifier
        allows for its type (default: email 1, email_hash as email, phone 2, anonymous id 1; an int
        applies to all).
    A hashed email (email_hash: a digest landed in place of the address) links like an email but is
    never a contact address.
    Unlinkable identifiers drop out of the graph entirely: they neither join people nor become a
    customer of their own, and are never used as a contact address. -#}

{%- set placeholder_emails = var('identity_placeholder_emails', []) | map('lower') | list -%}
{%- set placeholder_local_parts = var('identity_placeholder_email_local_parts', []) | map('lower') | list -%}
{%- set placeholder_phones = var('identity_placeholder_phones', []) | list -%}
{%- set max_accounts = var('identity_max_accounts_per_identifier', {'email': 1, 'phone': 2, 'anonymous_id': 1}) -%}
{%- if max_accounts is number -%}
    {%- set max_accounts = {'email': max_accounts, 'phone': max_accounts, 'anonymous_id': max_accounts} -%}
{%- endif -%}
{%- set max_accounts = dict(max_accounts, email_hash=max_accounts.get('email_hash', max_accounts.get('email', 1))) -%}

with observed as (
    select * from {{ ref('int_identifiers_observed') }}
    where {{ in_scope('identifier', 'identifier') }}
),

identifiers as (
    select
        identifier,
        identifier_type,
        identifier_value,
        min(seen_at) as first_seen_at,
        max(seen_at) as last_seen_at,
        count(distinct shopify_customer_id) as shopify_account_count,
        count(*) as record_count
    from observed
    group by
        identifier,
        identifier_type,
        identifier_value
),

flagged as (
    select
        *,
        case
            when identifier_type = 'email' then
                identifier_value in ({{ "'" ~ (placeholder_emails | join("', '")) ~ "'" if placeholder_emails else 'null' }})
                or {{ dbt.split_part(dbt.split_part('identifier_value', "'@'", 1), "'+'", 1) }}
                    in ({{ "'" ~ (placeholder_local_parts | join("', '")) ~ "'" if placeholder_local_parts else 'null' }})
            when identifier_type = 'phone' then
                identifier_value in ({{ "'" ~ (placeholder_phones | join("', '")) ~ "'" if placeholder_phones else 'null' }})
            else false
        end as is_placeholder,
        case
            when identifier_type = 'email' then
                coalesce({{ relay_regexp_matches(dbt.split_part('identifier_value', "'@'", 1), '^[0-9a-f]{32,}$') }}, false)
            else false
        end as is_hashed,
        case identifier_type
            {%- for identifier_type in ['email', 'email_hash', 'phone', 'anonymous_id'] %}
            when '{{ identifier_type }}' then shopify_account_count > {{ max_accounts.get(identifier_type, 1) }}
            {%- endfor %}
            else false
        end as is_shared
    from identifiers
),

final as (
    select
        identifier,
        identifier_type,
        identifier_value,
        first_seen_at,
        last_seen_at,
        shopify_account_count,
        record_count,
        case
            when is_placeholder then 'placeholder'
            when is_hashed then 'hashed'
            when is_shared then 'shared_by_accounts'
        end as guard_reason,
        not (coalesce(is_placeholder, false) or is_hashed or is_shared) as is_linkable,
        -- Survivor ordering: at equal first-seen times, account ids outrank emails, emails phones ...
        case identifier_type
            when 'shopify_customer' then 1
            when 'email' then 2
            when 'phone' then 3
            when 'salesforce_contact' then 4
            when 'segment_user' then 5
            when 'email_hash' then 6
            else 9
        end as identifier_rank,
        -- An anonymous id alone is not a person: it can join a customer, never found one.
        identifier_type != 'anonymous_id' as can_anchor_key
    from flagged
)

select * from final
