{#- One row per person: commerce lifecycle attributes (named like Fivetran's shopify__customers where
    the meaning is the same), engagement and consent, evaluated at the as-of time (int_as_of).
    Only valid orders count: test orders and cancelled/voided orders are excluded everywhere here.
    Money is in the shop currency; refunds are subtracted in the *_net figures. -#}

with customers as (
    select * from {{ ref('customers') }}
    where {{ in_scope('customer_key') }}
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
),

orders as (
    select
        orders.*
    from {{ ref('int_orders_attributed') }} as orders
    cross join as_of
    where {{ in_scope('orders.customer_key') }}
        and orders.is_valid
        and orders.customer_key is not null
        and orders.created_at <= as_of.as_of
),

discount_codes as (
    select * from {{ ref('stg_shopify__order_discount_codes') }}
),

events as (
    select * from {{ ref('int_events_attributed') }}
    where {{ in_scope('customer_key') }}
),

consents as (
    select * from {{ ref('int_consents_resolved') }}
    where {{ in_scope('customer_key') }}
),

order_facts as (
    select
        orders.customer_key,
        min(orders.created_at) as first_order_timestamp,
        max(orders.created_at) as most_recent_order_timestamp,
        count(*) as lifetime_count_orders,
        sum(orders.total_price) as lifetime_total_spent,
        sum(orders.refunded_amount) as lifetime_total_refunded,
        sum(orders.total_discounts) as lifetime_total_discount,
        count(case when orders.is_refunded then 1 end) as lifetime_count_refunded_orders,
        count(case when orders.is_discounted then 1 end) as lifetime_count_discounted_orders,
        count(case when orders.has_discount_code then 1 end) as lifetime_count_promo_redemptions,
        count(
            case
                when orders.has_discount_code
                    and {{ time_boundary('promo_window_end', 'orders.created_at') }} > as_of.as_of
                    then 1
            end
        ) as promo_redemptions_30d,
        max(case when orders.has_discount_code then orders.created_at end) as last_promo_redeemed_at,
        max(case when orders.valid_order_number = 1 and orders.has_discount_code then 1 else 0 end) = 1 as first_order_used_code
    from orders
    cross join as_of
    group by orders.customer_key
),

code_facts as (
    select
        orders.customer_key,
        count(distinct discount_codes.code) as lifetime_count_distinct_codes
    from orders
    inner join discount_codes
        on orders.order_id = discount_codes.order_id
    group by orders.customer_key
),

event_facts as (
    select
        events.customer_key,
        max(events.occurred_at) as last_seen_at
    from events
    cross join as_of
    where events.customer_key is not null
        and events.occurred_at <= as_of.as_of
    group by events.customer_key
),

joined as (
    select
        customers.customer_key,
        order_facts.first_order_timestamp,
        order_facts.most_recent_order_timestamp,
        coalesce(order_facts.lifetime_count_orders, 0) as lifetime_count_orders,
        cast(coalesce(order_facts.lifetime_total_spent, 0) as {{ dbt.type_numeric() }}) as lifetime_total_spent,
        cast(coalesce(order_facts.lifetime_total_refunded, 0) as {{ dbt.type_numeric() }}) as lifetime_total_refunded,
        cast(coalesce(order_facts.lifetime_total_discount, 0) as {{ dbt.type_numeric() }}) as lifetime_total_discount,
        coalesce(order_facts.lifetime_count_refunded_orders, 0) as lifetime_count_refunded_orders,
        coalesce(order_facts.lifetime_count_discounted_orders, 0) as lifetime_count_discounted_orders,
        coalesce(order_facts.lifetime_count_promo_redemptions, 0) as lifetime_count_promo_redemptions,
        coalesce(order_facts.promo_redemptions_30d, 0) as promo_redemptions_30d,
        order_facts.last_promo_redeemed_at,
        coalesce(code_facts.lifetime_count_distinct_codes, 0) as lifetime_count_distinct_codes,
        coalesce(order_facts.first_order_used_code, false) as first_order_used_code,
        event_facts.last_seen_at,
        coalesce(consents.email_marketing_consent, 'not_subscribed') as email_marketing_consent,
        consents.email_marketing_consent_source,
        coalesce(consents.sms_marketing_consent, 'not_subscribed') as sms_marketing_consent,
        as_of.as_of
    from customers
    cross join as_of
    left join order_facts
        on customers.customer_key = order_facts.customer_key
    left join code_facts
        on customers.customer_key = code_facts.customer_key
    left join event_facts
        on customers.customer_key = event_facts.customer_key
    left join consents
        on customers.customer_key = consents.customer_key
),

final as (
    select
        customer_key,
        first_order_timestamp,
        most_recent_order_timestamp,
        lifetime_count_orders,
        lifetime_total_spent,
        lifetime_total_refunded,
        cast(lifetime_total_spent - lifetime_total_refunded as {{ dbt.type_numeric() }}) as lifetime_total_net,
        cast(
            case when lifetime_count_orders > 0 then lifetime_total_spent / lifetime_count_orders end
            as {{ dbt.type_numeric() }}
        ) as average_order_value,
        lifetime_total_discount,
        lifetime_count_refunded_orders,
        case
            when lifetime_count_orders > 0 then 1.0 * lifetime_count_refunded_orders / lifetime_count_orders
        end as refund_rate,
        lifetime_count_discounted_orders,
        case
            when lifetime_count_orders > 0 then 1.0 * lifetime_count_discounted_orders / lifetime_count_orders
        end as discount_order_share,
        lifetime_count_promo_redemptions,
        promo_redemptions_30d,
        last_promo_redeemed_at,
        lifetime_count_distinct_codes,
        first_order_used_code,
        last_seen_at,
        email_marketing_consent,
        email_marketing_consent_source,
        sms_marketing_consent,
        email_marketing_consent = 'unsubscribed' as is_email_unsubscribed,
        case
            when lifetime_count_orders = 0 then 'prospect'
            when {{ time_boundary('lifecycle_churned_from', 'most_recent_order_timestamp') }} <= as_of then 'churned'
            when {{ time_boundary('lifecycle_lapsed_from', 'most_recent_order_timestamp') }} <= as_of then 'lapsed'
            when {{ time_boundary('lifecycle_at_risk_from', 'most_recent_order_timestamp') }} <= as_of then 'at_risk'
            when {{ time_boundary('lifecycle_new_until', 'first_order_timestamp') }} > as_of then 'new'
            else 'active'
        end as lifecycle_stage
    from joined
)

select * from final
