with source as (
    {{ relay_source('salesforce', 'contact') }}
)

select
    {{ clean_text('id') }} as contact_id,
    {{ normalize_email('email') }} as email,
    {{ valid_e164(normalize_phone('coalesce(' ~ clean_text('mobile_phone') ~ ', ' ~ clean_text('phone') ~ ')')) }} as phone,
    {{ clean_text('first_name') }} as first_name,
    {{ clean_text('last_name') }} as last_name,
    {{ clean_text('account_id') }} as account_id,
    coalesce(has_opted_out_of_email, false) as has_opted_out_of_email,
    {{ clean_timestamp('created_date') }} as created_at,
    {{ clean_timestamp('last_modified_date') }} as updated_at,
    {{ clean_timestamp('_fivetran_synced') }} as _fivetran_synced
from source
where not coalesce(is_deleted, false)
    and {{ not_deleted() }}
