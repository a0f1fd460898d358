-- Things that happen to existing orders and checkouts as time passes, each at a time fixed by the order
-- or checkout itself, so a row appears in whichever run's window (since, until] contains that time:
-- refunds, late checkout completions and the Segment events about orders.

-- Refunds: 2-42 days after the order (mostly the first two weeks), ~7% of orders, most of a serial refunder's.
create or replace temp table rf as
with o as (
    select id, id - 5600000000000 as oseq, customer_id, subtotal_price, total_tax, source_name, test,
        plus_s(created_at, 86400 * (2 + 40 * pow(rnd(id, 'refund_delay'), 2))) as refund_at
    from shopify."order"
    where created_at > plus_s(since_ts(), -45 * 86400) and financial_status = 'paid'
        and rnd(id, 'refund') < refund_rate(customer_id)
)
select *, rnd(id, 'refund_full') < 0.4 as full_refund from o
where visible(refund_at);

create or replace temp table rl as
select r.*, l.id as line_id, l."index" as idx, l.price, l.quantity, l.total_discount,
    case when r.full_refund then l.quantity else 1 end as refunded_quantity
from rf r join shopify.order_line l on l.order_id = r.id and (r.full_refund or l."index" = 0);

insert into shopify.refund by name
select refund_id(oseq) as id, id as order_id, refund_at as created_at, plus_s(refund_at, 2) as processed_at,
    case when rnd(id, 'refund_note') < 0.6 then null
        else pick(['Wrong size', 'Damaged in transit', 'Changed mind', 'Arrived late', 'Not as described'], 5, id, 'refund_note_text') end as note,
    full_refund and rnd(id, 'restock') < 0.7 as restock, 71000001 + hash({{seed}}::bigint, id, 'staff') % 5 as user_id,
    synced(refund_at, oseq) as _fivetran_synced
from rf;

create or replace temp table rl_amount as
select *, round((price - total_discount / quantity) * refunded_quantity, 2) as subtotal from rl;

insert into shopify.order_line_refund by name
select line_refund_id(oseq, idx) as id, refund_id(oseq) as refund_id, line_id as order_line_id, refunded_quantity as quantity, subtotal,
    round(subtotal * coalesce(total_tax / nullif(subtotal_price, 0), 0), 2) as total_tax,
    case when rnd(id, 'restock_type') < 0.7 then 'return' when rnd(id, 'restock_type') < 0.95 then 'no_restock' else 'legacy_restock' end
        as restock_type,
    synced(refund_at, oseq) as _fivetran_synced
from rl_amount;

insert into shopify."transaction" by name
select txn_id(oseq, 3) as id, id as order_id, refund_id(oseq) as refund_id,
    round(sum(subtotal + round(subtotal * coalesce(total_tax / nullif(subtotal_price, 0), 0), 2)), 2) as amount,
    'refund' as kind, 'success' as status, gateway(oseq, source_name) as gateway, 'USD' as currency,
    refund_at as created_at, plus_s(refund_at, 2) as processed_at, test, synced(refund_at, oseq) as _fivetran_synced
from rl_amount
group by all;

-- Fivetran upserts the order with its new status.
update shopify."order" o
set financial_status = case when rf.full_refund then 'refunded' else 'partially_refunded' end,
    updated_at = rf.refund_at, _fivetran_synced = synced(rf.refund_at, rf.oseq)
from rf
where o.id = rf.id;

-- Recovered checkouts: the loader sees completed_at some time after the order (sometimes hours).
update shopify.abandoned_checkout c
set completed_at = o.created_at, updated_at = o.created_at,
    _fivetran_synced = plus_s(o.created_at, completion_lag_s(c.id - 31000000000000))
from shopify."order" o
where o.id = order_id(recovered_oseq(c.id - 31000000000000))
    and o.id between order_id(100000000000) and order_id(200000000000)
    and c.completed_at is null and c.created_at > plus_s(since_ts(), -3 * 86400)
    and visible(plus_s(o.created_at, completion_lag_s(c.id - 31000000000000)));

-- Segment: Coupon Applied and Order Completed for tracked orders (late with the checkout when it was a
-- recovered cart), Order Refunded for their refunds.
insert into segment.tracks by name
with o as (
    select o.id, o.id - 5600000000000 as oseq, o.customer_id, o.created_at, o.subtotal_price, o.checkout_token, d.code
    from shopify."order" o
    left join shopify.order_discount_code d on d.order_id = o.id and d."index" = 0
    where o.created_at > plus_s(since_ts(), -2 * 86400) and is_tracked(o.id, o.source_name, o.test)
), e as (
    select oseq * 4 as k, id, customer_id, 'Order Completed' as event, plus_s(created_at, 2) as ts,
        page('/checkouts/' || coalesce(checkout_token, '') || '/thank_you') as context_page_url, code as coupon, subtotal_price as revenue,
        case when recovered_cseq(oseq) is not null then completion_lag_s(recovered_cseq(oseq)) else event_lag_s(oseq * 4, 'track') end as lag_s
    from o
    union all
    select oseq * 4 + 1, id, customer_id, 'Coupon Applied', plus_s(created_at, -45), page('/checkouts/' || coalesce(checkout_token, '')),
        code, null, event_lag_s(oseq * 4 + 1, 'track')
    from o where code is not null
    union all
    select oseq * 4 + 2, id, customer_id, 'Order Refunded', plus_s(refund_at, 5), page('/admin/orders/' || id), null, null,
        event_lag_s(oseq * 4 + 2, 'track')
    from rf where is_tracked(id, source_name, test)
), r as (
    select *, plus_s(ts, lag_s) as received_at from e
)
select 'ajs-next-' || hex32(k, 'order_track') as id, order_anon(customer_id, id) as anonymous_id, customer_id::varchar as user_id,
    event, event as event_text, ts as "timestamp", received_at, plus_s(received_at, -0.15) as sent_at, context_page_url,
    id::varchar as order_id, null as checkout_id, coupon, revenue,
    least(plus_s(received_at, 300 + 900 * rnd(k, 'uuid_ts')), until_ts()) as uuid_ts
from r
where visible(received_at);
