-- Turns the orders of this run (ob, with the recovered checkouts sample_insert.sql added and any offer
-- conversions sample_offers.sql planted) into raw rows: order, order_line, codes, allocations, transaction.
-- Only rows that become visible in (since, until] are written.

create or replace temp table ol as
with l as (
    select o.oseq, o.code, o.created_at, n as idx,
        -- a replenisher's first line is their usual skincare product
        case when n = 0 and is_replenisher(cust_i(o.customer_id)) then 200 + cust_i(o.customer_id) % 12
            else cast(floor(200 * pow(rnd(o.oseq * 16 + n, 'product'), 2)) as bigint) end as product,
        case when rnd(o.oseq * 16 + n, 'qty') < 0.85 then 1 when rnd(o.oseq * 16 + n, 'qty') < 0.96 then 2 else 3 end as quantity
    from (select *, unnest(range(n_lines(oseq))) as n from ob where visible(created_at)) o
)
select l.*, c.title, c.vendor, c.price,
    -- percentage codes apply to every line, TAKE5 to the first
    round(c.price * l.quantity * code_percent(l.code) + case when idx = 0 then least(code_fixed(l.code), c.price * l.quantity) else 0 end, 2)
        as total_discount
from l join catalog c on c.p = l.product;

create or replace temp table new_order as
with t as (
    select oseq, sum(price * quantity) as items, sum(total_discount) as discounts from ol group by oseq
), o as (
    select ob.*, cust_i(ob.customer_id) as i, round(t.items, 2) as items, round(t.discounts, 2) as discounts,
        case when rnd(ob.oseq, 'cancel') < 0.02 and plus_s(ob.created_at, 1800 + 84600 * rnd(ob.oseq, 'cancel_at')) <= until_ts()
            then plus_s(ob.created_at, 1800 + 84600 * rnd(ob.oseq, 'cancel_at')) end as cancelled_at,
        case when ob.source_name = 'pos' then ob.created_at
            when plus_s(ob.created_at, 86400 * (1 + 3 * rnd(ob.oseq, 'fulfil_at'))) <= until_ts()
            then plus_s(ob.created_at, 86400 * (1 + 3 * rnd(ob.oseq, 'fulfil_at'))) end as fulfilled_at,
        -- a gift: shipped to someone else
        case when rnd(ob.oseq, 'gift') < 0.08 then 70000000 + ob.oseq % 10000000 else ob.person end as ship_to,
        coalesce(shares_ring_address(cust_i(ob.customer_id)), false) as ring_drop
    from ob join t using (oseq)
    where visible(ob.created_at)
)
select *, round((items - discounts) * tax_rate(ship_to), 2) as tax,
    case when items - discounts >= 75 or source_name = 'pos' then 0 else 6.95 end as shipping,
    coalesce(is_ring(i), false) as ring
from o;

insert into shopify."order" by name
-- Order names continue the shop's sequence in order of creation (numbered on a narrow relation: cheaper).
with n as (
    select oseq, (select coalesce(max(try_cast(substr(name, 2) as bigint)), 1000) from shopify."order")
        + row_number() over (order by created_at, oseq) as number
    from new_order
)
select order_id(oseq) as id, '#' || number as name, email, phone, customer_id,
    created_at, plus_s(created_at, 1 + 3 * rnd(oseq, 'processed')) as processed_at,
    coalesce(cancelled_at, greatest(fulfilled_at, plus_s(created_at, 5))) as updated_at, cancelled_at,
    case when cancelled_at is not null then pick(['customer', 'fraud', 'inventory', 'declined', 'other'], 5, oseq, 'cancel_reason') end as cancel_reason,
    case when cancelled_at is not null then 'voided'
        when source_name = 'shopify_draft_order' and rnd(oseq, 'pending') < 0.3 then 'pending' else 'paid' end as financial_status,
    case when cancelled_at is null and fulfilled_at is not null then case when rnd(oseq, 'partial') < 0.03 then 'partial' else 'fulfilled' end end
        as fulfillment_status,
    'USD' as currency, round(items - discounts + tax + shipping, 2) as total_price, round(items - discounts, 2) as subtotal_price,
    discounts as total_discounts, tax as total_tax, items as total_line_items_price, source_name, test,
    case when source_name != 'pos' then pick(['203.0.113.', '198.51.100.', '192.0.2.'], 3, coalesce(i, oseq), 'ip') || (1 + hash({{seed}}::bigint, coalesce(i, oseq), 'ip4') % 254) end
        as browser_ip,
    case when recovered_cseq(oseq) is not null then checkout_token(recovered_cseq(oseq))
        when source_name in ('web', 'iphone', '580111') then hex32(oseq, 'order_checkout') end as checkout_token,
    case when source_name in ('web', 'iphone', '580111') then hex32(oseq, 'order_cart') end as cart_token,
    rnd(oseq, 'order_marketing') < 0.35 as buyer_accepts_marketing,
    address_1(person, ring_drop) as billing_address_address_1, city(person, ring_drop) as billing_address_city,
    zip(person, ring_drop) as billing_address_zip, country(person, ring_drop) as billing_address_country_code, phone as billing_address_phone,
    address_1(ship_to, ring_drop) as shipping_address_address_1, city(ship_to, ring_drop) as shipping_address_city,
    zip(ship_to, ring_drop) as shipping_address_zip, country(ship_to, ring_drop) as shipping_address_country_code,
    case when ship_to = person then phone end as shipping_address_phone,
    synced(coalesce(cancelled_at, greatest(fulfilled_at, plus_s(created_at, 5))), oseq) as _fivetran_synced,
    rnd(oseq, 'order_deleted') < 0.002 as _fivetran_deleted
from new_order join n using (oseq);

insert into shopify.order_line by name
select line_id(l.oseq, l.idx) as id, order_id(l.oseq) as order_id, l.idx as "index", 8100000000000 + l.product as product_id,
    44000000000000 + l.product * 8 + hash({{seed}}::bigint, l.oseq * 16 + l.idx, 'variant') % 4 as variant_id,
    'RL-' || lpad(l.product::varchar, 4, '0') || '-' || ['XS', 'S', 'M', 'L'][1 + (hash({{seed}}::bigint, l.oseq * 16 + l.idx, 'variant') % 4)::integer] as sku,
    l.title, l.vendor, l.quantity, l.price, l.total_discount, synced(l.created_at, l.oseq) as _fivetran_synced
from ol l;

insert into shopify.order_discount_code by name
select order_id(oseq) as order_id, 0 as "index", code, discounts as amount,
    case when code_fixed(code) > 0 then 'fixed_amount' else 'percentage' end as type, synced(created_at, oseq) as _fivetran_synced
from new_order
where code is not null;

insert into shopify.discount_allocation by name
select line_id(oseq, idx) as order_line_id, 0 as "index", total_discount as amount, 0 as discount_application_index,
    synced(created_at, oseq) as _fivetran_synced
from ol
where total_discount > 0;

-- Payments: a declined attempt now and then, the sale (or an authorization that is voided on cancellation).
insert into shopify."transaction" by name
with o as (
    -- the ring always pays with its one card
    select *, case when ring then 'shopify_payments' else gateway(oseq, source_name) end as gateway,
        round(items - discounts + tax + shipping, 2) as total
    from new_order
), t as (
    select oseq, 0 as j, 'sale' as kind, 'failure' as status, plus_s(created_at, -40) as txn_at, * exclude (oseq) from o
    where gateway = 'shopify_payments' and rnd(oseq, 'declined') < 0.03
    union all
    select oseq, 1, case when cancelled_at is not null then 'authorization' else 'sale' end,
        case when source_name = 'shopify_draft_order' and rnd(oseq, 'pending') < 0.3 then 'pending' else 'success' end,
        created_at, * exclude (oseq) from o
    union all
    select oseq, 2, 'void', 'success', cancelled_at, * exclude (oseq) from o where cancelled_at is not null
)
select txn_id(oseq, j) as id, order_id(oseq) as order_id, null as refund_id, total as amount, kind, status, gateway, 'USD' as currency,
    txn_at as created_at, plus_s(txn_at, 1) as processed_at,
    case when gateway = 'shopify_payments' then card_bin(person, ring) end as payment_credit_card_bin,
    case when gateway = 'shopify_payments' then card_number(person, ring) end as payment_credit_card_number,
    case when gateway = 'shopify_payments' then card_company(person, ring) end as payment_credit_card_company,
    test, synced(txn_at, oseq * 4 + j) as _fivetran_synced
from t
where visible(txn_at);
