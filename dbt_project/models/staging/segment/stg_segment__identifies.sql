with source as (
    {{ relay_source('segment', 'identifies') }}
),

cleaned as (
    select
        {{ clean_text('id') }} as identify_id,
        {{ clean_text('anonymous_id') }} as anonymous_id,
        {{ clean_text('user_id') }} as user_id,
        {{ normalize_email('email') }} as email,
        -- A digest landed in place of the address: an identity link, never a contact (macros/cleaning.sql).
        {{ hashed_email('email') }} as email_hash,
        {{ valid_e164(normalize_phone('phone')) }} as phone,
        {{ clean_timestamp('timestamp') }} as occurred_at,
        {{ clean_timestamp('received_at') }} as received_at
    from source
),

deduplicated as (
    select
        *,
        row_number() over (partition by identify_id order by received_at, occurred_at) as delivery_rank
    from cleaned
)

select
    identify_id,
    anonymous_id,
    user_id,
    email,
    email_hash,
    phone,
    occurred_at,
    received_at
from deduplicated
where delivery_rank = 1
