{#- Segment track events with the person they belong to: by user_id (a Shopify customer id, or another
    known id), else by anonymous_id once an identify call tied that device to a person. Events of
    devices never identified have no customer_key. -#}

with tracks as (
    select * from {{ ref('stg_segment__tracks') }}
),

resolved as (
    select * from {{ ref('int_identifiers_resolved') }}
),

keyed as (
    select
        tracks.*,
        case
            when {{ dbt.safe_cast('tracks.user_id', dbt.type_bigint()) }} is not null
                then 'shopify_customer:' || cast({{ dbt.safe_cast('tracks.user_id', dbt.type_bigint()) }} as {{ dbt.type_string() }})
            when tracks.user_id is not null
                then 'segment_user:' || tracks.user_id
        end as user_identifier,
        'anonymous_id:' || tracks.anonymous_id as anonymous_identifier
    from tracks
),

final as (
    select
        keyed.event_id,
        coalesce(by_user.customer_key, by_device.customer_key) as customer_key,
        keyed.event_name,
        keyed.occurred_at,
        keyed.received_at,
        keyed.checkout_token,
        keyed.order_id,
        keyed.coupon
    from keyed
    left join resolved as by_user
        on keyed.user_identifier = by_user.identifier
    left join resolved as by_device
        on keyed.anonymous_identifier = by_device.identifier
)

select * from final
