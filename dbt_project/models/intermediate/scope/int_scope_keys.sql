{#- The people a scoped run recomputes. Everyone whose segment rows could differ from the previous run's:
      identity   every key the identifiers in scope had before this run or have now (a key that merged
                 away must lose its rows); this covers every changed order, refund, checkout and account;
      events     people with a new event, or an event whose time the clock just passed;
      tokens     owners of checkouts whose token a changed order carries (guest orders convert carts);
      clock      people a segment's time boundary (macros/time_boundaries.sql: every one, after an order,
                 a checkout's start, an event, or a moment the previous run stored, such as a due date; and
                 every frequent segment model's meta.segment.window) passed between the previous clock and
                 this one, people whose membership's member_until it passed, and people whose
                 refund, checkout start or conversion it passed; everyone when VIP tiers are by
                 percentile (the cut-offs depend on every buyer and re-base monthly);
      rings      accounts sharing a shipping address or card with any of the above (ring sizes change).
    Empty when not scoped. Reads the previous run's commerce tables directly: for people out of scope
    they are still current. -#}

-- depends_on: {{ ref('int_scope_watermark') }}
-- depends_on: {{ ref('int_scope_changed_records') }}
-- depends_on: {{ ref('int_as_of') }}
-- depends_on: {{ ref('stg_shopify__orders') }}
-- depends_on: {{ ref('stg_shopify__transactions') }}

{%- set scoped = relay_scoped() %}

{#- Every time boundary to watch (declared, and the frequent segments' windows) as SQL on the column of its anchor (equal ones once). A 'stored' anchor
    is a column of a model's previous run: its boundaries are grouped by that model (`stored`). #}
{%- set anchors = {'order': 'previous_orders.created_at', 'checkout': 'checkouts.started_at', 'event': 'events.occurred_at',
                   'stored': 'stored.'} %}
{%- set boundaries = {'order': [], 'checkout': [], 'event': []} %}
{%- set stored = {} %}
{%- for name, boundary in scope_time_boundaries().items() %}
    {%- if boundary.anchor not in anchors %}
        {{- exceptions.raise_compiler_error("time boundary '" ~ name ~ "': int_scope_keys has no anchor '" ~ boundary.anchor ~ "'") }}
    {%- endif %}
    {%- if boundary.anchor == 'stored' %}
        {%- set stored_model, stored_column = boundary.column.split('.') %}
        {%- if stored_model not in stored %}{%- do stored.update({stored_model: []}) %}{%- endif %}
        {%- set expression = dbt.dateadd(boundary.unit, boundary.amount, anchors['stored'] ~ stored_column) | trim %}
        {%- set found = stored[stored_model] %}
    {%- else %}
        {%- set expression = dbt.dateadd(boundary.unit, boundary.amount, anchors[boundary.anchor]) | trim %}
        {%- set found = boundaries[boundary.anchor] %}
    {%- endif %}
    {%- if expression not in found %}
        {%- do found.append(expression) %}
    {%- endif %}
{%- endfor %}

with scope as (
    select * from {{ ref('int_scope_identifiers') }}
),

resolved as (
    select * from {{ ref('int_identifiers_resolved') }}
),

events as (
    select * from {{ ref('int_events_attributed') }}
),

{%- if scoped %}

changed as (
    select * from {{ ref('int_scope_changed_records') }}
),

clock as (
    select
        watermark.previous_as_of as since,
        as_of.as_of as until
    from {{ ref('int_scope_watermark') }} as watermark
    cross join {{ ref('int_as_of') }} as as_of
),

previous_orders as (
    select * from {{ scope_relation('int_orders_attributed') }}
),

identity_keys as (
    select previous_customer_key as customer_key
    from scope
    where previous_customer_key is not null

    union

    select customer_key
    from resolved
    where identifier in (select identifier from scope)
),

event_keys as (
    select events.customer_key
    from events
    cross join clock
    where events.customer_key is not null
        and (
            'segment_track:' || events.event_id in (select record from changed)
            or (events.occurred_at > clock.since and events.occurred_at <= clock.until)
        )
),

clock_keys as (
    select previous_orders.customer_key
    from previous_orders
    cross join clock
    where previous_orders.customer_key is not null
        and (
            false
            {%- for boundary in boundaries['order'] %}
            or ({{ boundary }} > clock.since and {{ boundary }} <= clock.until)
            {%- endfor %}
        )

    union

    select refunds.customer_key
    from {{ scope_relation('int_refunds_attributed') }} as refunds
    cross join clock
    where refunds.customer_key is not null
        and refunds.refunded_at > clock.since
        and refunds.refunded_at <= clock.until

    union

    select checkouts.customer_key
    from {{ scope_relation('int_checkouts_started') }} as checkouts
    cross join clock
    where checkouts.customer_key is not null
        and (
            (checkouts.converted_at > clock.since and checkouts.converted_at <= clock.until)
            or (checkouts.started_at > clock.since and checkouts.started_at <= clock.until)
            {%- for boundary in boundaries['checkout'] %}
            or ({{ boundary }} > clock.since and {{ boundary }} <= clock.until)
            {%- endfor %}
        )

    {%- if 'member_until' in adapter.get_columns_in_relation(scope_relation('segment_memberships')) | map(attribute='name') | list %}

    union

    select memberships.customer_key
    from {{ scope_relation('segment_memberships') }} as memberships
    cross join clock
    where memberships.member_until > clock.since
        and memberships.member_until <= clock.until
    {%- endif %}

    union

    select events.customer_key
    from events
    cross join clock
    where events.customer_key is not null
        and (
            false
            {%- for boundary in boundaries['event'] %}
            or ({{ boundary }} > clock.since and {{ boundary }} <= clock.until)
            {%- endfor %}
        )
    {%- for stored_model, stored_boundaries in stored.items() %}

    union

    -- Moments {{ stored_model }} computed from a person's data, as the previous run stored them (unchanged
    -- for everyone out of this run's scope).
    select stored.customer_key
    from {{ scope_relation(stored_model) }} as stored
    cross join clock
    where stored.customer_key is not null
        and (
            false
            {%- for boundary in stored_boundaries %}
            or ({{ boundary }} > clock.since and {{ boundary }} <= clock.until)
            {%- endfor %}
        )
    {%- endfor %}

    union

    select customers.customer_key
    from {{ scope_relation('customers') }} as customers
    where {{ 'true' if var('vip_tier_method', 'absolute') == 'percentile' else 'false' }}
),

changed_orders as (
    select *
    from {{ ref('stg_shopify__orders') }}
    where {{ in_changed('order_id', 'shopify_order', 'bigint') }}
),

-- The owners of checkouts a changed order carries the token of (before or now): a guest order tied to
-- its checkout only by the token converts that checkout, and its owner must leave the cart segments.
token_keys as (
    select checkouts.customer_key
    from {{ scope_relation('int_checkouts_started') }} as checkouts
    where checkouts.customer_key is not null
        and checkouts.checkout_token in (
            select checkout_token from changed_orders where checkout_token is not null
            union
            select checkout_token from previous_orders
            where order_id in (select order_id from changed_orders) and checkout_token is not null
        )
),

base_keys as (
    select customer_key from identity_keys
    union
    select customer_key from event_keys
    union
    select customer_key from clock_keys
    union
    select customer_key from token_keys
),

-- Addresses and cards of the people above, as of the previous run and of the orders changed since.

scope_order_ids as (
    select order_id from previous_orders where customer_key in (select customer_key from base_keys)
    union
    select order_id from changed_orders
),

-- Cards as staged now (unchanged orders' are as the previous run staged them), plus every raw version
-- of the changed orders' transactions (the previous run's among them, when the loader keeps versions).
transactions as (
    select
        order_id,
        card_bin || '-' || card_last4 as card
    from {{ ref('stg_shopify__transactions') }}
    where card_bin is not null
        and card_last4 is not null

    union all

    select
        {{ clean_bigint('order_id') }} as order_id,
        {{ raw_card_fingerprint() }} as card
    from ({{ relay_source('shopify', 'transaction') }})
    where payment_credit_card_bin is not null
        and payment_credit_card_number is not null
        and {{ in_changed(clean_bigint('order_id'), 'shopify_order', 'bigint') }}
),

fingerprints as (
    select shipping_address_key as fingerprint
    from previous_orders
    where order_id in (select order_id from scope_order_ids)
        and shipping_address_key is not null

    union

    select {{ shipping_address_key('changed_orders') }} as fingerprint
    from changed_orders

    union

    select card as fingerprint
    from transactions
    where order_id in (select order_id from scope_order_ids)
),

ring_keys as (
    select customer_key
    from previous_orders
    where customer_key is not null
        and (
            shipping_address_key in (select fingerprint from fingerprints)
            or order_id in (select order_id from transactions where card in (select fingerprint from fingerprints))
        )
),

keys as (
    select customer_key from base_keys
    union
    select customer_key from ring_keys
)

select customer_key
from keys
where customer_key is not null

{%- else %}

empty as (
    select cast(null as {{ dbt.type_string() }}) as customer_key
    where 1 = 0
)

select * from empty
{%- endif %}
