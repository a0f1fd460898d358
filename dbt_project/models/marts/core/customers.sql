{#- One row per person: the canonical customer with the identifiers each destination addresses it by.
    Contact details are chosen from the person's linkable identifiers (never a placeholder or a digest)
    and the shared addresses the person owns, by source precedence, then recency:
      email: Shopify account (most recently updated) > order (most recent) > checkout > Segment identify > Salesforce contact
      phone: the same order of sources
      name:  Shopify account (most recently updated) > Salesforce contact
    A shared address (an email or phone on more Shopify accounts than the guard allows, e.g. a household
    inbox) links nobody, so its accounts stay separate people; it is the contact address of exactly one of
    them, the person whose account was updated last while carrying it, so it reaches one person once
    rather than nobody (the others are counted in marts.data_health as held_by_another_account). -#}

with resolved as (
    select * from {{ ref('int_identifiers_resolved') }}
    where {{ in_scope('customer_key') }}
),

shared_owners as (
    select * from ({{ relay_shared_address_owners() }}) as owners
    where {{ in_scope('customer_key') }}
),

observed as (
    select * from {{ ref('int_identifiers_observed') }}
    {%- if relay_scoped() %}
    where identifier in (select identifier from resolved)
        or identifier in (select identifier from shared_owners)
    {%- endif %}
),

shopify_accounts as (
    select * from {{ ref('stg_shopify__customers') }}
    where {{ in_scope_records('customer_id', 'shopify_customer', 'bigint') }}
),

contacts as (
    select * from {{ ref('stg_salesforce__contacts') }}
    where {{ in_scope_records('contact_id', 'salesforce_contact') }}
),

people as (
    select
        customer_key,
        min(first_seen_at) as first_seen_at,
        max(case when issued_key = customer_key then identifier end) as key_anchor_identifier,
        count(case when identifier_type = 'shopify_customer' then 1 end) as shopify_account_count,
        count(case when identifier_type = 'email' then 1 end) as email_count,
        count(case when identifier_type = 'phone' then 1 end) as phone_count,
        count(case when identifier_type = 'anonymous_id' then 1 end) as anonymous_id_count,
        count(case when identifier_type = 'salesforce_contact' then 1 end) as salesforce_contact_count,
        -- Orders can name an account whose customer row never landed: still the person's Shopify id.
        max(
            case when identifier_type = 'shopify_customer' then {{ relay_try_cast('identifier_value', dbt.type_bigint()) }} end
        ) as any_shopify_customer_id
    from resolved
    group by customer_key
),

-- Emails and phones as records carried them: the latest use per identifier and source.
contact_uses as (
    select
        identifier,
        case record_type
            when 'shopify_customer' then 1
            when 'shopify_order' then 2
            when 'shopify_checkout' then 3
            when 'segment_identify' then 4
            else 5
        end as source_priority,
        max(record_updated_at) as last_used_at
    from observed
    where identifier_type in ('email', 'phone')
    group by
        identifier,
        record_type
),

owned_contacts as (
    select customer_key, identifier, identifier_type, identifier_value
    from resolved
    where identifier_type in ('email', 'phone')
    union all
    select customer_key, identifier, identifier_type, identifier_value
    from shared_owners
),

-- Ranked by source precedence, then recency.
contact_candidates as (
    select
        owned_contacts.customer_key,
        owned_contacts.identifier_type,
        owned_contacts.identifier_value,
        row_number() over (
            partition by owned_contacts.customer_key, owned_contacts.identifier_type
            order by
                contact_uses.source_priority,
                contact_uses.last_used_at desc,
                owned_contacts.identifier_value
        ) as preference
    from contact_uses
    inner join owned_contacts
        on contact_uses.identifier = owned_contacts.identifier
),

account_candidates as (
    select
        resolved.customer_key,
        shopify_accounts.customer_id,
        shopify_accounts.first_name,
        shopify_accounts.last_name,
        row_number() over (
            partition by resolved.customer_key
            order by shopify_accounts.updated_at desc, shopify_accounts.customer_id desc
        ) as preference
    from shopify_accounts
    inner join resolved
        on 'shopify_customer:' || cast(shopify_accounts.customer_id as {{ dbt.type_string() }}) = resolved.identifier
),

crm_candidates as (
    select
        resolved.customer_key,
        contacts.contact_id,
        contacts.first_name,
        contacts.last_name,
        row_number() over (
            partition by resolved.customer_key
            order by contacts.updated_at desc, contacts.contact_id desc
        ) as preference
    from contacts
    inner join resolved
        on 'salesforce_contact:' || contacts.contact_id = resolved.identifier
),

final as (
    select
        people.customer_key,
        people.customer_key as customerio_id,
        emails.identifier_value as cordial_email,
        '{{ var("talon_one_integration_id_prefix", "") }}' || people.customer_key as talon_one_integration_id,
        emails.identifier_value as email,
        phones.identifier_value as phone,
        coalesce(accounts.first_name, crm_contacts.first_name) as first_name,
        coalesce(accounts.last_name, crm_contacts.last_name) as last_name,
        coalesce(accounts.customer_id, people.any_shopify_customer_id) as shopify_customer_id,
        crm_contacts.contact_id as salesforce_contact_id,
        people.first_seen_at,
        people.key_anchor_identifier,
        people.shopify_account_count,
        people.email_count,
        people.phone_count,
        people.anonymous_id_count,
        people.salesforce_contact_count
    from people
    left join contact_candidates as emails
        on people.customer_key = emails.customer_key
        and emails.identifier_type = 'email'
        and emails.preference = 1
    left join contact_candidates as phones
        on people.customer_key = phones.customer_key
        and phones.identifier_type = 'phone'
        and phones.preference = 1
    left join account_candidates as accounts
        on people.customer_key = accounts.customer_key
        and accounts.preference = 1
    left join crm_candidates as crm_contacts
        on people.customer_key = crm_contacts.customer_key
        and crm_contacts.preference = 1
)

select * from final
