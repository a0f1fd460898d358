-- Turns the temp base tables (built by sample_generate.sql or sample_append.sql) into raw rows:
--   cust_base(i, created_at, updated_at)                       -> customer, customer_tag, identifies
--   identify_base(k, anonymous_id, user_id, email, phone, ts)  -> identifies
--   checkout_keys(cseq, created_at) + accounts(i, email, created_at)  -> abandoned_checkout(+codes), tracks
--   sessions(sid, anonymous_id, user_id, started_at)           -> tracks (Product Viewed / Product Added)
--   ob(oseq, customer_id, email, phone, person, created_at, code, source_name, test) <- recovered checkouts
--                                                              (sample_orders.sql writes the orders)
-- Only rows that become visible in (since, until] are written.

-- Products 0-199 are what shoppers browse and buy at random; 200-211 are the skincare range that
-- replenishers (is_replenisher) rebuy at their own rhythm. The category is the product type.
create or replace temp table catalog as
with c as (
    select p,
        pick(['Classic', 'Everyday', 'Organic', 'Merino', 'Linen', 'Trail', 'Studio', 'Heritage', 'Cloud', 'Coastal'], 10, p, 'adj')
            as adjective,
        pick(['Tee', 'Hoodie', 'Sock Pack', 'Beanie', 'Tote', 'Water Bottle', 'Candle', 'Mug', 'Notebook', 'Jacket',
              'Sneaker', 'Cap', 'Scarf', 'Backpack', 'Blanket'], 15, p, 'noun') as noun,
        pick(['Relay Basics', 'Northwind', 'Acme Goods', 'Juniper & Co'], 4, p, 'vendor') as vendor,
        -- log-normal unit prices ending in .99
        greatest(round(exp(ln(32) + 0.75 * gauss(p, 'price'))), 5) - 0.01 as price
    from range(200) r(p)
), t as (
    select p, adjective || ' ' || noun || ' ' || (p % 7 + 1) as title, vendor, price,
        case when noun in ('Tee', 'Hoodie', 'Sock Pack', 'Jacket', 'Sneaker') then 'Apparel'
            when noun in ('Beanie', 'Tote', 'Cap', 'Scarf', 'Backpack') then 'Accessories'
            else 'Home' end as category
    from c
    union all
    select 200 + j, ['Daily Face Serum', 'Hydrating Cleanser', 'Mineral Sunscreen', 'Night Cream', 'Lip Balm Trio', 'Body Lotion',
            'Eye Gel', 'Clay Mask', 'Toner Mist', 'Hand Cream', 'Exfoliating Scrub', 'Vitamin C Drops'][j + 1],
        'Juniper & Co', 18 + 3 * j - 0.01, 'Skincare'
    from range(12) r(j)
)
select *, replace(lower(title), ' ', '-') as handle from t;

create or replace temp table category_products as
select category, list(p order by p) as products, count(*) as n from catalog group by category;

-- The catalog as Fivetran lands it, once (written by the first generate only). A few products have no
-- product type (the category then comes from the storefront's events), some are archived.
insert into shopify.product by name
with p as (
    select *, plus_s(until_ts(), -1100 * 86400 + 3600 * p) as created_at,
        plus_s(until_ts(), -1100 * 86400 + 3600 * p + 86400 * 300 * rnd(p, 'product_updated')) as updated_at
    from catalog
)
select 8100000000000 + p as id, title, handle,
    case when p % 40 = 13 then '' when p % 40 = 27 then ' ' || category || ' ' else category end as product_type,
    vendor, case when rnd(p, 'archived') < 0.05 then 'archived' else 'active' end as status,
    created_at, updated_at, synced(updated_at, p) as _fivetran_synced, false as _fivetran_deleted
from p
where visible(created_at);

insert into shopify.customer by name
with c as (
    select b.*, current_email(b.i) as cur from cust_base b
), e as (
    select *, account_email(i, cur) as email, case when has_phone(i) then phone_typed(person(i), i) end as phone from c
), s as (
    select *,
        case when email is null then null
            when rnd(i, 'consent') < 0.45 then 'subscribed' when rnd(i, 'consent') < 0.86 then 'not_subscribed'
            when rnd(i, 'consent') < 0.96 then 'unsubscribed' when rnd(i, 'consent') < 0.98 then 'pending'
            when rnd(i, 'consent') < 0.99 then 'invalid' else 'redacted' end as email_state,
        case when phone is null then null
            when rnd(i, 'sms') < 0.18 then 'subscribed' when rnd(i, 'sms') < 0.88 then 'not_subscribed'
            when rnd(i, 'sms') < 0.97 then 'unsubscribed' when rnd(i, 'sms') < 0.98 then 'pending'
            when rnd(i, 'sms') < 0.99 then 'invalid' else 'redacted' end as sms_state
    from e
)
select cust_id(i) as id, email, first_name(person(i)) as first_name, last_name(i) as last_name, phone,
    case when rnd(i, 'state') < 0.55 then 'enabled' when rnd(i, 'state') < 0.95 then 'disabled'
        when rnd(i, 'state') < 0.99 then 'invited' else 'declined' end as state,
    -- the legacy flag mostly mirrors the consent state
    (email_state = 'subscribed') != (rnd(i, 'legacy_flag') < 0.02) as accepts_marketing,
    email_state as email_marketing_consent_state,
    case when email_state is null then null
        when email_state = 'subscribed' and rnd(i, 'opt_in') < 0.7 then 'single_opt_in'
        when email_state = 'subscribed' and rnd(i, 'opt_in') < 0.95 then 'confirmed_opt_in'
        when rnd(i, 'opt_in') < 0.6 then 'single_opt_in' else 'unknown' end as email_marketing_consent_opt_in_level,
    -- unsubscribes happen some time after signup; everything else at signup
    case when email_state is null then null
        when email_state = 'unsubscribed' then plus_s(created_at, (epoch(updated_at) - epoch(created_at)) * rnd(i, 'consent_at'))
        else plus_s(created_at, 5) end as email_marketing_consent_consent_updated_at,
    sms_state as sms_marketing_consent_state,
    case when sms_state is not null then plus_s(created_at, 5 + (epoch(updated_at) - epoch(created_at)) * rnd(i, 'sms_at')) end
        as sms_marketing_consent_consent_updated_at,
    email is not null and rnd(i, 'verified') < 0.85 as verified_email, 'USD' as currency, created_at, updated_at,
    synced(updated_at, i) as _fivetran_synced, rnd(i, 'deleted') < 0.005 as _fivetran_deleted
from s
where visible(created_at);

insert into shopify.customer_tag by name
select cust_id(i) as customer_id, t as "index",
    ['VIP', 'newsletter', 'Login with Shop', 'wholesale', 'vip', 'returning', 'klaviyo', 'do-not-contact', 'influencer', 'pos']
        [1 + ((hash({{seed}}::bigint, i, 'tag') + t * 3) % 10)::integer] as value,
    synced(updated_at, i) as _fivetran_synced
from (select *, unnest(range(case when rnd(i, 'tags') < 0.55 then 0 when rnd(i, 'tags') < 0.85 then 1 else 2 end)) as t from cust_base)
where visible(created_at);

-- Most accounts identify at signup; a quarter (newsletter sign-ups) only with an email, no user id.
insert into identify_base by name
with c as (select *, signup_email(i) as signup from cust_base where rnd(i, 'segment') < 0.7)
select i * 4 as k, anon_id(i * 4) as anonymous_id,
    case when rnd(i, 'identify_user') < 0.75 then cust_id(i)::varchar end as user_id,
    typed(signup, i, 'identify_email') as email,
    case when has_phone(i) and rnd(i, 'identify_phone') < 0.3 then phone_typed(person(i), i * 8 + 3) end as phone,
    plus_s(created_at, 2) as ts
from c;

insert into segment.identifies by name
with i as (select *, plus_s(ts, event_lag_s(k, 'identify')) as received_at from identify_base)
select 'ajs-next-' || hex32(k, 'identify') as id, anonymous_id, user_id, email, phone, ts as "timestamp", received_at,
    least(plus_s(received_at, 300 + 900 * rnd(k, 'uuid_ts')), until_ts()) as uuid_ts
from i
where visible(received_at);

-- Who is at the checkout (see checkout_who); accounts holds every customer a checkout key can pick.
create or replace temp table cb as
with c as (
    select *, checkout_i(cseq) as i, checkout_who(cseq) as who, checkout_person(cseq) as person from checkout_keys
)
select c.cseq, c.created_at,
    -- logged in only if the account already existed
    case when who < 0.55 and a.created_at <= c.created_at and not is_gone(a.i) then cust_id(a.i) end as customer_id,
    case when who < 0.55 then lower(a.email)
        when who < 0.80 then typed(a.email, c.cseq, 'checkout_email')
        when who < 0.95 then personal_email(first_name(person), last_name(person), person)
    end as email,
    person,
    case when (who < 0.80 and has_phone(a.i)) or rnd(c.cseq, 'checkout_phone') < 0.3 then phone_typed(person, c.cseq) end as phone,
    case when rnd(c.cseq, 'checkout_code') < 0.15 then typed_code(pick(['WELCOME10', 'WELCOME10', 'WELCOME10', 'WINBACK20', 'SPRING25',
        'BFCM30', 'TAKE5', 'FREESHIP2024'], 8, c.cseq, 'checkout_code_pick'), c.cseq) end as code,
    case when rnd(c.cseq, 'checkout_tracked') < 0.8 then
        case when who < 0.55 then anon_id(a.i * 4) else anon_id(2000000000000 + c.cseq) end end as anonymous_id
from c join accounts a using (i);

insert into shopify.abandoned_checkout by name
with c as (
    select *,
        round(exp(ln(55) + 0.65 * gauss(cseq, 'cart')), 2) as subtotal,
        least(plus_s(created_at, 60 + 840 * rnd(cseq, 'checkout_updated')), until_ts()) as updated_at,
        rnd(cseq, 'checkout_address') < 0.7 as with_address
    from cb
), d as (
    select *, round(subtotal * code_percent(code) + least(code_fixed(code), subtotal), 2) as discount from c
)
select checkout_id(cseq) as id, checkout_token(cseq) as token, hex32(cseq, 'cart_token') as cart_token, email, phone, customer_id,
    created_at, updated_at, null as completed_at,
    case when rnd(cseq, 'closed') < 0.03 and plus_s(created_at, 7 * 86400) <= until_ts() then plus_s(created_at, 7 * 86400) end as closed_at,
    page('/57216434289/checkouts/' || checkout_token(cseq) || '/recover?key=' || hex16(cseq, 'recover_key')) as abandoned_checkout_url,
    round(subtotal - discount + case when with_address then round((subtotal - discount) * tax_rate(person), 2) else 0 end
        + case when subtotal - discount < 75 then 6.95 else 0 end, 2) as total_price,
    subtotal as subtotal_price, discount as total_discounts, 'USD' as currency,
    rnd(cseq, 'checkout_marketing') < 0.35 as buyer_accepts_marketing,
    case when with_address then address_1(person, false) end as shipping_address_address_1,
    case when with_address then zip(person, false) end as shipping_address_zip,
    case when with_address then country(person, false) end as shipping_address_country_code,
    synced(updated_at, cseq) as _fivetran_synced, rnd(cseq, 'checkout_deleted') < 0.005 as _fivetran_deleted
from d
where visible(created_at);

insert into shopify.abandoned_checkout_discount_code by name
select checkout_id(cseq) as checkout_id, 0 as "index", code,
    round(subtotal_price * code_percent(code) + least(code_fixed(code), subtotal_price), 2) as amount,
    case when code_fixed(code) > 0 then 'fixed_amount' else 'percentage' end as type,
    plus_s(created_at, 30) as created_at, synced(plus_s(created_at, 30), cseq) as _fivetran_synced
from (select cb.cseq, cb.code, c.subtotal_price, c.created_at from cb join shopify.abandoned_checkout c on c.id = checkout_id(cb.cseq))
where code is not null and visible(created_at);

-- Storefront events: browsing sessions, and the add-to-cart / checkout / coupon steps of each checkout.
insert into segment.tracks by name
with s as (
    -- planted sessions (views / adds set) browse exactly that much; most devices have a favourite category
    select *, coalesce(views, 1 + least(floor(-ln(greatest(rnd(sid, 'views'), 1e-9)) * 1.5), 6)::bigint) as n_views,
        coalesce(adds, (rnd(sid, 'added') < 0.35)::bigint) as n_adds,
        favourite_category(hash(anonymous_id) % 1000000007) as favourite
    from sessions
), e as (
    select s.*, e, sid * 16 + e as k, plus_s(started_at, e * 50 + 30 * rnd(sid * 16 + e, 'view_gap')) as ts
    -- the adds are the events after the views
    from s, unnest(range(n_views + n_adds)) t(e)
), ep as (
    select e.*,
        case when f.category is not null and rnd(k, 'fan_pick') < 0.8 then f.products[1 + (hash({{seed}}::bigint, k, 'fan_product') % f.n)::integer]
            else cast(floor(200 * pow(rnd(k, 'product'), 2)) as bigint) end as product
    from e left join category_products f on f.category = e.favourite
), checkout_steps as (
    select cseq * 4 + step as k, anonymous_id, customer_id::varchar as user_id,
        ['Product Added', 'Checkout Started', 'Coupon Applied'][step + 1] as event,
        plus_s(created_at, [-90, 0, 30][step + 1]) as ts,
        page(case when step = 0 then '/cart' else '/checkouts/' || checkout_token(cseq) end) as context_page_url,
        case when step = 1 then checkout_token(cseq) end as checkout_id,
        case when step = 2 then code end as coupon,
        case when step = 0 then cast(floor(200 * pow(rnd(cseq, 'cart_product'), 2)) as bigint) end as product
    from cb, unnest(range(case when code is null then 2 else 3 end)) t(step)
    where anonymous_id is not null
), t as (
    select k, anonymous_id, user_id, case when e < n_views then 'Product Viewed' else 'Product Added' end as event, ts,
        page('/products/' || c.handle) as context_page_url, null as checkout_id, null as coupon, c.p as product, c.category
    from ep join catalog c on c.p = ep.product
    union all
    select k + 8000000000000, anonymous_id, user_id, event, ts, context_page_url, checkout_id, coupon, c.p, c.category
    from checkout_steps left join catalog c on c.p = checkout_steps.product
), r as (
    select *, plus_s(ts, event_lag_s(k, 'track')) as received_at from t
)
select 'ajs-next-' || hex32(k, 'track') as id, anonymous_id, user_id, event, event as event_text, ts as "timestamp", received_at,
    plus_s(received_at, -0.15) as sent_at, context_page_url, null as order_id, checkout_id, coupon, null as revenue,
    -- the storefront has sent the e-commerce properties since a theme update 18 months ago (older rows: null)
    case when ts > plus_s(until_ts(), -548 * 86400) then (8100000000000 + product)::varchar end as product_id,
    case when ts > plus_s(until_ts(), -548 * 86400) then category end as category,
    least(plus_s(received_at, 300 + 900 * rnd(k, 'uuid_ts')), until_ts()) as uuid_ts
from r
where visible(received_at);

-- Checkouts that became orders (any checkout in the last 3 days, so append picks up earlier carts too).
insert into ob by name
select recovered_oseq(c.cseq) as oseq, c.customer_id, c.email, c.phone, checkout_person(c.cseq) as person,
    plus_s(c.created_at, recover_after_s(c.cseq)) as created_at, d.code, 'web' as source_name, false as test
from (select id - 31000000000000 as cseq, * from shopify.abandoned_checkout where created_at > plus_s(since_ts(), -3 * 86400)) c
left join shopify.abandoned_checkout_discount_code d on d.checkout_id = c.id
where visible(plus_s(c.created_at, recover_after_s(c.cseq)));
