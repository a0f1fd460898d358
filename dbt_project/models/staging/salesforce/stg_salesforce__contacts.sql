with source as (
    {{ relay_source('salesforce', 'contact') }}
),

-- The newest version of each key when the loader delivered one twice (macros/data_quality.sql).
versions as (
    select
        *,
        {{ relay_version_rank('salesforce.contact', ['_fivetran_synced', 'last_modified_date']) }} as _relay_version_rank
    from source
)

select
    {{ clean_text('id') }} as contact_id,
    {{ normalize_email('email') }} as email,
    -- A digest landed in place of the address: an identity link, never a contact (macros/cleaning.sql).
    {{ hashed_email('email') }} as email_hash,
    {{ valid_e164(normalize_phone('coalesce(' ~ clean_text('mobile_phone') ~ ', ' ~ clean_text('phone') ~ ')')) }} as phone,
    {{ clean_display_text('first_name') }} as first_name,
    {{ clean_display_text('last_name') }} as last_name,
    {{ clean_text('account_id') }} as account_id,
    coalesce({{ clean_boolean('has_opted_out_of_email') }}, false) as has_opted_out_of_email,
    {{ clean_timestamp('created_date') }} as created_at,
    {{ clean_timestamp('last_modified_date') }} as updated_at,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from versions
where {{ relay_is_latest_version('salesforce.contact') }}
    and {{ not_deleted('is_deleted') }}
    and {{ not_deleted() }}
