-- depends_on: {{ ref('int_scope_identifiers') }}
{{ config(scope_delete=[['event_id', 'self']]) }}

{#- Segment track events with the person they belong to: by user_id (a Shopify customer id, or another
    known id), else by anonymous_id once an identify call tied that device to a person. Events of
    devices never identified have no customer_key.
    Scoped runs (macros/scope/) attribute the new events and re-key the stored ones whose user or
    device changed person. -#}

{%- if relay_scoped() %}
-- Identifiers in scope whose person changed this run: only their stored events need a new key.
with rekeyed as (
    select scope.identifier
    from {{ ref('int_scope_identifiers') }} as scope
    left join {{ ref('int_identifiers_resolved') }} as resolved
        on scope.identifier = resolved.identifier
    where resolved.customer_key is distinct from scope.previous_customer_key
),

tracks as (
{%- else %}
with tracks as (
{%- endif %}
    select * from {{ ref('stg_segment__tracks') }}
    where {{ in_changed('event_id', 'segment_track') }}
),

resolved as (
    select * from {{ ref('int_identifiers_resolved') }}
),

keyed as (
    select
        tracks.*,
        case
            when {{ relay_try_cast('tracks.user_id', dbt.type_bigint()) }} is not null
                then 'shopify_customer:' || cast({{ relay_try_cast('tracks.user_id', dbt.type_bigint()) }} as {{ dbt.type_string() }})
            when tracks.user_id is not null
                then 'segment_user:' || tracks.user_id
        end as user_identifier,
        'anonymous_id:' || tracks.anonymous_id as anonymous_identifier
    from tracks
    {%- if relay_scoped() %}

    union all

    select
        event_id,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        cast(null as {{ dbt.type_string() }}) as user_id,
        event_name,
        occurred_at,
        received_at,
        cast(null as {{ dbt.type_string() }}) as page_url,
        order_id,
        checkout_token,
        coupon,
        cast(null as {{ dbt.type_numeric() }}) as revenue,
        product_id,
        category,
        user_identifier,
        anonymous_identifier
    from {{ this }}
    where (user_identifier in (select identifier from rekeyed) or anonymous_identifier in (select identifier from rekeyed))
        and event_id not in (select event_id from tracks)
    {%- endif %}
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
        keyed.coupon,
        keyed.product_id,
        keyed.category,
        keyed.user_identifier,
        keyed.anonymous_identifier
    from keyed
    left join resolved as by_user
        on keyed.user_identifier = by_user.identifier
    left join resolved as by_device
        on keyed.anonymous_identifier = by_device.identifier
)

select * from final
