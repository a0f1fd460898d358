{#- What happened to a person, one row per event, for the event syncs (models/syncs/*/..._events): facts
    with a deterministic event_id, so a rerun, a loader re-sync or a duplicated Segment track never makes
    a second one. Append-only downstream: once a destination acknowledged an event it is never sent again,
    and a row that later leaves this model (a cart that converted) is not retracted.
      Order Completed     one per valid order, id from the order id (server-side: not the Segment track)
      Order Refunded      one per refund of a person's order
      Checkout Abandoned  one per checkout that entered a cart window: after the grace delay, never for
                          someone who bought in between, never for the suppressed or the holdout
      Segment Entered / Segment Exited  one per membership spell's start and end (marts.segment_membership_history),
                          id from (segment, person, entry time): leaving and re-entering fires again, a rerun never does.
                          The memberships the history's first build found are a baseline, not entries: a
                          first deploy does not fire an entry for every current member (their exits do fire).
                          A key a merge retired does not exit: its person lives on as the survivor
                          (marts.identity_merges), whose own spells say where they are
    Scoped runs recompute the people in scope (macros/scope/). -#}

with orders as (
    select * from {{ ref('int_orders_attributed') }}
    where {{ in_scope('customer_key') }}
        and customer_key is not null
        and is_valid
),

refunds as (
    select * from {{ ref('int_refunds_attributed') }}
    where {{ in_scope('customer_key') }}
        and customer_key is not null
),

carts as (
    select * from {{ ref('cart_abandonments') }}
    where {{ in_scope('customer_key') }}
        and cart_window is not null
),

spells as (
    select * from {{ ref('segment_membership_history') }}
    where {{ in_scope('customer_key') }}
),

merges as (
    select * from {{ ref('identity_merges') }}
),

baseline as (
    select min(entered_at) as first_build_at from {{ ref('segment_membership_history') }}
),

order_completed as (
    select
        'order_completed:' || cast(order_id as {{ dbt.type_string() }}) as event_id,
        customer_key,
        'Order Completed' as event_name,
        created_at as occurred_at,
        order_id,
        total_price as order_total,
        total_discounts as order_discount,
        first_discount_code as discount_code,
        cast(null as {{ dbt.type_bigint() }}) as refund_id,
        cast(null as {{ dbt.type_numeric() }}) as refund_amount,
        cast(null as {{ dbt.type_string() }}) as checkout_token,
        cast(null as {{ dbt.type_string() }}) as recovery_url,
        cast(null as {{ dbt.type_string() }}) as segment
    from orders
),

order_refunded as (
    select
        'order_refunded:' || cast(refund_id as {{ dbt.type_string() }}) as event_id,
        customer_key,
        'Order Refunded' as event_name,
        refunded_at as occurred_at,
        order_id,
        cast(null as {{ dbt.type_numeric() }}) as order_total,
        cast(null as {{ dbt.type_numeric() }}) as order_discount,
        cast(null as {{ dbt.type_string() }}) as discount_code,
        refund_id,
        amount as refund_amount,
        cast(null as {{ dbt.type_string() }}) as checkout_token,
        cast(null as {{ dbt.type_string() }}) as recovery_url,
        cast(null as {{ dbt.type_string() }}) as segment
    from refunds
),

checkout_abandoned as (
    select
        'checkout_abandoned:' || checkout_token as event_id,
        customer_key,
        'Checkout Abandoned' as event_name,
        {{ time_boundary('cart_grace_end', 'checkout_started_at') }} as occurred_at,
        cast(null as {{ dbt.type_bigint() }}) as order_id,
        checkout_total_price as order_total,
        cast(null as {{ dbt.type_numeric() }}) as order_discount,
        cast(null as {{ dbt.type_string() }}) as discount_code,
        cast(null as {{ dbt.type_bigint() }}) as refund_id,
        cast(null as {{ dbt.type_numeric() }}) as refund_amount,
        checkout_token,
        recovery_url,
        cast(null as {{ dbt.type_string() }}) as segment
    from carts
),

segment_changes as (
    select
        membership_spell_id || ':entered' as event_id,
        customer_key,
        'Segment Entered' as event_name,
        entered_at as occurred_at,
        segment
    from spells
    cross join baseline
    where spells.entered_at > baseline.first_build_at

    union all

    select
        spells.membership_spell_id || ':exited' as event_id,
        spells.customer_key,
        'Segment Exited' as event_name,
        spells.exited_at as occurred_at,
        spells.segment
    from spells
    left join merges on merges.retired_key = spells.customer_key
    where spells.exited_at is not null
        and (merges.retired_key is null or spells.exited_at < merges.merged_at)
),

segment_events as (
    select
        event_id,
        customer_key,
        event_name,
        occurred_at,
        cast(null as {{ dbt.type_bigint() }}) as order_id,
        cast(null as {{ dbt.type_numeric() }}) as order_total,
        cast(null as {{ dbt.type_numeric() }}) as order_discount,
        cast(null as {{ dbt.type_string() }}) as discount_code,
        cast(null as {{ dbt.type_bigint() }}) as refund_id,
        cast(null as {{ dbt.type_numeric() }}) as refund_amount,
        cast(null as {{ dbt.type_string() }}) as checkout_token,
        cast(null as {{ dbt.type_string() }}) as recovery_url,
        segment
    from segment_changes
),

final as (
    select * from order_completed
    union all
    select * from order_refunded
    union all
    select * from checkout_abandoned
    union all
    select * from segment_events
)

select * from final
