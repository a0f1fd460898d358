{#- Marketing consent per person and channel, merged across the person's Shopify accounts and
    Salesforce contacts. Precedence (an opt-out is never overridden by a weaker signal):
      1. A Salesforce contact of the person opted out of email (HasOptedOutOfEmail) -> unsubscribed.
      2. Else the person's most recent Shopify consent state (latest consent_updated_at, then account
         updated_at, across their accounts): unsubscribed / redacted / invalid -> unsubscribed;
         subscribed -> subscribed; not_subscribed / pending (unconfirmed double opt-in) -> not_subscribed.
      3. No consent record at all -> not_subscribed (consent is never assumed).
    SMS consent comes from Shopify only (the Salesforce contract carries no SMS opt-out). -#}

with shopify_accounts as (
    select * from {{ ref('stg_shopify__customers') }}
    where {{ in_scope_records('customer_id', 'shopify_customer', 'bigint') }}
),

contacts as (
    select * from {{ ref('stg_salesforce__contacts') }}
    where {{ in_scope_records('contact_id', 'salesforce_contact') }}
),

resolved as (
    select * from {{ ref('int_identifiers_resolved') }}
    where {{ in_scope('customer_key') }}
),

accounts as (
    select
        resolved.customer_key,
        shopify_accounts.customer_id,
        shopify_accounts.email_consent_state,
        shopify_accounts.sms_consent_state,
        row_number() over (
            partition by resolved.customer_key
            order by
                case when shopify_accounts.email_consent_state is null then 1 else 0 end,
                coalesce(shopify_accounts.email_consent_updated_at, shopify_accounts.updated_at) desc,
                shopify_accounts.customer_id desc
        ) as email_recency_rank,
        row_number() over (
            partition by resolved.customer_key
            order by
                case when shopify_accounts.sms_consent_state is null then 1 else 0 end,
                coalesce(shopify_accounts.sms_consent_updated_at, shopify_accounts.updated_at) desc,
                shopify_accounts.customer_id desc
        ) as sms_recency_rank
    from shopify_accounts
    inner join resolved
        on 'shopify_customer:' || cast(shopify_accounts.customer_id as {{ dbt.type_string() }}) = resolved.identifier
),

crm_opt_outs as (
    select
        resolved.customer_key,
        max(case when contacts.has_opted_out_of_email then 1 else 0 end) = 1 as has_crm_email_opt_out
    from contacts
    inner join resolved
        on 'salesforce_contact:' || contacts.contact_id = resolved.identifier
    group by resolved.customer_key
),

people as (
    select distinct customer_key
    from resolved
),

final as (
    select
        people.customer_key,
        case
            when crm_opt_outs.has_crm_email_opt_out then 'unsubscribed'
            when email_accounts.email_consent_state in ('unsubscribed', 'redacted', 'invalid') then 'unsubscribed'
            when email_accounts.email_consent_state = 'subscribed' then 'subscribed'
            else 'not_subscribed'
        end as email_marketing_consent,
        case
            when crm_opt_outs.has_crm_email_opt_out then 'salesforce'
            when email_accounts.email_consent_state is not null then 'shopify'
        end as email_marketing_consent_source,
        case
            when sms_accounts.sms_consent_state in ('unsubscribed', 'redacted', 'invalid') then 'unsubscribed'
            when sms_accounts.sms_consent_state = 'subscribed' then 'subscribed'
            else 'not_subscribed'
        end as sms_marketing_consent
    from people
    left join accounts as email_accounts
        on people.customer_key = email_accounts.customer_key
        and email_accounts.email_recency_rank = 1
    left join accounts as sms_accounts
        on people.customer_key = sms_accounts.customer_key
        and sms_accounts.sms_recency_rank = 1
    left join crm_opt_outs
        on people.customer_key = crm_opt_outs.customer_key
)

select * from final
