{#- One row per person: commerce lifecycle attributes (named like Fivetran's shopify__customers where
    the meaning is the same), engagement and consent, evaluated at the as-of time (int_as_of).
    Only valid orders count: test orders and cancelled/voided orders are excluded everywhere here.
    Money is in the shop currency; refunds are subtracted in the *_net figures.
    Intent attributes: the AOV band, the top product category of the affinity window, product views and
    cart adds of the intent window, and the category the person replenishes with its due window. Every
    window is a time boundary (macros/time_boundaries.sql), so a scoped run sees the clock pass it. -#}

{%- set weights = var('affinity_weights') %}
{%- set floors = var('aov_band_floors') %}

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

signals as (
    select signals.*
    from {{ ref('int_product_signals_attributed') }} as signals
    cross join as_of
    where {{ in_scope('signals.customer_key') }}
        and signals.occurred_at <= as_of.as_of
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

-- Each product signal with its weight and the windows it is in at the as-of time.
windowed_signals as (
    select
        signals.customer_key,
        signals.signal_type,
        signals.category,
        signals.occurred_at,
        case signals.signal_type
            {%- for signal_type, weight in weights.items() %}
            when '{{ signal_type }}' then {{ weight }}
            {%- endfor %}
            else 0
        end as weight,
        case
            when signals.signal_type = 'order_line'
                then {{ time_boundary('affinity_order_window_end', 'signals.occurred_at') }} > as_of.as_of
            else {{ time_boundary('affinity_event_window_end', 'signals.occurred_at') }} > as_of.as_of
        end as is_in_affinity_window,
        {{ time_boundary('intent_window_end', 'signals.occurred_at') }} > as_of.as_of as is_in_intent_window
    from signals
    cross join as_of
),

intent_facts as (
    select
        customer_key,
        count(case when is_in_intent_window and signal_type = 'product_viewed' then 1 end) as recent_product_views,
        count(case when is_in_intent_window and signal_type = 'product_added' then 1 end) as recent_cart_adds
    from windowed_signals
    group by customer_key
),

category_scores as (
    select
        customer_key,
        category,
        sum(weight) as score,
        count(case when signal_type = 'product_viewed' then 1 end) as views,
        max(occurred_at) as last_signal_at
    from windowed_signals
    where is_in_affinity_window
        and category is not null
    group by customer_key, category
),

-- Ties: the category with the latest signal, then the first by name.
top_categories as (
    select
        customer_key,
        category as top_category,
        views as top_category_views
    from category_scores
    qualify row_number() over (
        partition by customer_key
        order by score desc, last_signal_at desc, category
    ) = 1
),

category_purchases as (
    select
        customer_key,
        category,
        count(distinct {{ dbt.date_trunc('day', 'occurred_at') }}) as purchase_days,
        min({{ dbt.date_trunc('day', 'occurred_at') }}) as first_purchase_day,
        max({{ dbt.date_trunc('day', 'occurred_at') }}) as last_purchase_day,
        max(occurred_at) as last_purchased_at
    from signals
    where signal_type = 'order_line'
        and category is not null
    group by customer_key, category
),

-- The category bought on the most distinct days (then the most recently bought, then by name), with its
-- mean interval between consecutive purchase days. Chosen without the clock: its due window is declared.
replenishments as (
    select
        customer_key,
        category as replenishment_category,
        interval_days as replenishment_interval_days,
        {{ dbt.dateadd('day', 'interval_days', 'last_purchased_at') }} as replenishment_due_at
    from (
        select
            *,
            cast(round(
                1.0 * {{ dbt.datediff('first_purchase_day', 'last_purchase_day', 'day') }} / (purchase_days - 1)
            ) as {{ dbt.type_int() }}) as interval_days
        from category_purchases
        -- An interval needs two purchase days whatever the var says.
        where purchase_days >= {{ [var('replenishment_min_purchases'), 2] | max }}
    ) as repeated
    qualify row_number() over (
        partition by customer_key
        order by purchase_days desc, last_purchased_at desc, category
    ) = 1
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
        top_categories.top_category,
        coalesce(top_categories.top_category_views, 0) as top_category_views,
        coalesce(intent_facts.recent_product_views, 0) as recent_product_views,
        coalesce(intent_facts.recent_cart_adds, 0) as recent_cart_adds,
        replenishments.replenishment_category,
        replenishments.replenishment_interval_days,
        replenishments.replenishment_due_at,
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
    left join intent_facts
        on customers.customer_key = intent_facts.customer_key
    left join top_categories
        on customers.customer_key = top_categories.customer_key
    left join replenishments
        on customers.customer_key = replenishments.customer_key
),

with_order_value as (
    select
        *,
        cast(
            case when lifetime_count_orders > 0 then lifetime_total_spent / lifetime_count_orders end
            as {{ dbt.type_numeric() }}
        ) as average_order_value
    from joined
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
        average_order_value,
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
        end as lifecycle_stage,
        case
            when average_order_value >= {{ floors.high }} then 'high'
            when average_order_value >= {{ floors.mid }} then 'mid'
            when average_order_value is not null then 'low'
        end as aov_band,
        top_category,
        top_category_views,
        recent_product_views,
        recent_cart_adds,
        replenishment_category,
        replenishment_interval_days,
        replenishment_due_at,
        {{ time_boundary('replenishment_due_until', 'replenishment_due_at') }} as replenishment_due_until,
        coalesce(
            {{ time_boundary('replenishment_due_from', 'replenishment_due_at') }} <= as_of
            and {{ time_boundary('replenishment_due_until', 'replenishment_due_at') }} > as_of,
            false
        ) as is_replenishment_due
    from with_order_value
)

select * from final
