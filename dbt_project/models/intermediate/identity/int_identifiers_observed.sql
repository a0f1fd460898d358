{{ config(scope_delete=[["record_type || ':' || record_id", 'changed']]) }}

{#- Every identifier every source record carries, one row per (record, identifier): the raw material
    of the identity graph. An identifier is "<type>:<value>" with a normalised value:
      shopify_customer:<id>   email:<trimmed lower-case>   phone:<E.164>   email_hash:<lower-case hex digest>
      anonymous_id:<segment anonymous id>   salesforce_contact:<id>   segment_user:<non-numeric user id>
    Segment user ids are Shopify customer ids as text, so numeric ones become shopify_customer nodes.
    Test orders are staff activity, not a person's, and link nothing.
    Scoped runs (macros/scope/) re-read only the records the loaders changed. -#}

with customers as (
    select * from {{ ref('stg_shopify__customers') }}
    where {{ in_changed('customer_id', 'shopify_customer', 'bigint') }}
),

orders as (
    select * from {{ ref('stg_shopify__orders') }}
    where not is_test_order
        and {{ in_changed('order_id', 'shopify_order', 'bigint') }}
),

checkouts as (
    select * from {{ ref('stg_shopify__abandoned_checkouts') }}
    where {{ in_changed('checkout_id', 'shopify_checkout', 'bigint') }}
),

identifies as (
    select * from {{ ref('stg_segment__identifies') }}
    where {{ in_changed('identify_id', 'segment_identify') }}
),

contacts as (
    select * from {{ ref('stg_salesforce__contacts') }}
    where {{ in_changed('contact_id', 'salesforce_contact') }}
),

-- One row per record with up to five identifiers and the Shopify account (if any) it belongs to.
records as (
    select
        'shopify_customer' as record_type,
        cast(customer_id as {{ dbt.type_string() }}) as record_id,
        customer_id as shopify_customer_id,
        cast(null as {{ dbt.type_string() }}) as segment_user_id,
        email,
        email_hash,
        phone,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        cast(null as {{ dbt.type_string() }}) as salesforce_contact_id,
        coalesce(created_at, updated_at) as seen_at,
        coalesce(updated_at, created_at) as record_updated_at
    from customers

    union all

    select
        'shopify_order' as record_type,
        cast(order_id as {{ dbt.type_string() }}) as record_id,
        customer_id as shopify_customer_id,
        null as segment_user_id,
        email,
        email_hash,
        phone,
        null as anonymous_id,
        null as salesforce_contact_id,
        created_at as seen_at,
        created_at as record_updated_at
    from orders

    union all

    select
        'shopify_checkout' as record_type,
        cast(checkout_id as {{ dbt.type_string() }}) as record_id,
        customer_id as shopify_customer_id,
        null as segment_user_id,
        email,
        email_hash,
        phone,
        null as anonymous_id,
        null as salesforce_contact_id,
        created_at as seen_at,
        created_at as record_updated_at
    from checkouts

    union all

    select
        'segment_identify' as record_type,
        identify_id as record_id,
        {{ relay_try_cast('user_id', dbt.type_bigint()) }} as shopify_customer_id,
        case
            when {{ relay_try_cast('user_id', dbt.type_bigint()) }} is null then user_id
        end as segment_user_id,
        email,
        email_hash,
        phone,
        anonymous_id,
        null as salesforce_contact_id,
        occurred_at as seen_at,
        occurred_at as record_updated_at
    from identifies

    union all

    select
        'salesforce_contact' as record_type,
        contact_id as record_id,
        null as shopify_customer_id,
        null as segment_user_id,
        email,
        email_hash,
        phone,
        null as anonymous_id,
        contact_id as salesforce_contact_id,
        coalesce(created_at, updated_at) as seen_at,
        coalesce(updated_at, created_at) as record_updated_at
    from contacts
),

{%- set identifier_columns = {
    'shopify_customer': 'cast(shopify_customer_id as ' ~ dbt.type_string() ~ ')',
    'email': 'email',
    'email_hash': 'email_hash',
    'phone': 'phone',
    'anonymous_id': 'anonymous_id',
    'salesforce_contact': 'salesforce_contact_id',
    'segment_user': 'segment_user_id',
} %}

unpivoted as (
    {%- for identifier_type, expression in identifier_columns.items() %}
    select
        record_type,
        record_id,
        shopify_customer_id,
        seen_at,
        record_updated_at,
        '{{ identifier_type }}' as identifier_type,
        {{ expression }} as identifier_value
    from records
    where {{ expression }} is not null
    {% if not loop.last %}
    union all
    {% endif %}
    {%- endfor %}
),

final as (
    select distinct
        record_type,
        record_id,
        identifier_type || ':' || identifier_value as identifier,
        identifier_type,
        identifier_value,
        shopify_customer_id,
        seen_at,
        record_updated_at
    from unpivoted
)

select * from final
