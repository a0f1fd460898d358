with source as (
    {{ relay_source('shopify', 'customer') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('shopify.customer', ['_fivetran_synced', 'updated_at']) }} as _relay_version_rank
    from source
),

cleaned as (
    select
        cast({{ clean_bigint('id') }} as {{ dbt.type_bigint() }}) as customer_id,
        {{ normalize_email('email') }} as email,
        -- A digest landed in place of the address: an identity link, never a contact (macros/cleaning.sql).
        {{ hashed_email('email') }} as email_hash,
        {{ clean_text('email') }} as email_raw,
        {{ clean_display_text('first_name') }} as first_name,
        {{ clean_display_text('last_name') }} as last_name,
        {{ valid_e164(normalize_phone('phone')) }} as phone,
        lower({{ clean_text('state') }}) as account_state,
        lower(coalesce(
            {{ clean_text('email_marketing_consent_state') }},
            case {{ clean_boolean('accepts_marketing') }} when true then 'subscribed' when false then 'not_subscribed' end
        )) as email_consent_state,
        lower({{ clean_text('email_marketing_consent_opt_in_level') }}) as email_consent_opt_in_level,
        {{ clean_timestamp('email_marketing_consent_consent_updated_at') }} as email_consent_updated_at,
        lower({{ clean_text('sms_marketing_consent_state') }}) as sms_consent_state,
        {{ clean_timestamp('sms_marketing_consent_consent_updated_at') }} as sms_consent_updated_at,
        coalesce({{ clean_boolean('verified_email') }}, false) as is_verified_email,
        upper({{ clean_text('currency') }}) as currency,
        {{ clean_timestamp('created_at') }} as created_at,
        {{ clean_timestamp('updated_at') }} as updated_at,
        {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
    from versions
    where {{ relay_is_latest_version('shopify.customer') }}
        and {{ not_deleted() }}
)

select * from cleaned
