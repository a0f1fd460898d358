-- History: about two years of a shop with {{customers}} accounts, up to {{until}}. Builds the temp "base"
-- tables that sample_insert.sql turns into raw rows (the same file serves append), plus the history-only
-- tables (Salesforce, shop, refunds of orders the loader never saw).

-- Customers: whether, how often and when they buy. *_days are days before as_of, before the seasonal warp.
-- A buyer is acquired at first_days (more recently than not: the shop grows) and then orders every `gap`
-- days until their `wanted` orders are done (churned) or as_of is reached (still active).
create or replace temp table people as
with c as (
    select i,
        is_ring(i) or is_gone(i) or is_heavy_redeemer(i) or is_serial_refunder(i) or rnd(i, 'buyer') < 0.72 as buyer,
        -- days between orders: log-normal around six weeks
        least(greatest(exp(ln(40) + 0.7 * gauss(i, 'gap')), 7), 365) as gap,
        -- the fraud ring is a recent burst of new accounts
        case when is_ring(i) then 3 + 50 * rnd(i, 'first') else 730 * pow(rnd(i, 'first'), 1.1) end as first_days
    from range(1, {{customers}} + 1) r(i)
), k as (
    select *,
        case when not buyer then 0
            when is_ring(i) or (rnd(i, 'repeat') < 0.4 and not is_heavy_redeemer(i) and not is_serial_refunder(i)) then 1
            -- repeat buyers: a geometric tail; heavy redeemers and serial refunders buy more
            else least(2 + floor(ln(greatest(rnd(i, 'orders'), 1e-9)) / ln(0.8))::integer, 30)
                + case when is_heavy_redeemer(i) or is_serial_refunder(i) then 3 else 0 end
        end as wanted
    from c
), d as (
    select *, least(wanted, 1 + floor(first_days / gap)::integer) as orders,
        -- most accounts are created at the first checkout, the rest earlier; prospects sign up any time
        case when buyer then first_days + case when rnd(i, 'signup') < 0.6 then 0.014 * rnd(i, 'signup_gap') else 300 * rnd(i, 'signup_gap') end
            else 760 * pow(rnd(i, 'signup_gap'), 1.3) end as created_days
    from k
)
select i, buyer, gap, first_days, orders, first_days - gap * (orders - 1) as last_days, days_ago(created_days) as created_at,
    current_email(i) as email,
    -- email changers used the old address until some point after signing up
    case when email_changed(i) then signup_email(i) end as old_email,
    case when email_changed(i) then days_ago(created_days * rnd(i, 'changed_at')) end as email_changed_at
from d;

create or replace temp table cust_base as
select i, created_at,
    least(plus_s(greatest(created_at, case when buyer then days_ago(last_days) end), 30 + 600 * rnd(i, 'updated')), until_ts()) as updated_at
from people
where not is_gone(i);  -- their orders stay: orders pointing at no customer row

-- Orders of account holders: n = 0 .. orders-1, every `gap` days with some jitter in between.
create or replace temp table ob as
with o as (
    select i, n, gap, email, old_email, email_changed_at, i * 64 + n as oseq,
        days_ago(first_days - gap * n
            + case when n > 0 and n < orders - 1 then gap * 0.7 * (rnd(i * 64 + n, 'jitter') - 0.5) else 0 end) as created_at
    from (select *, unnest(range(orders)) as n from people)
), c as (
    select *, order_code(oseq, n, i, created_at, case when n > 0 then gap end) as canonical_code,
        case when created_at < email_changed_at then old_email else email end as order_email
    from o
)
select oseq, cust_id(i) as customer_id,
    -- the checkout copies the account email, usually lower-cased
    case when rnd(oseq, 'order_email') < 0.85 then lower(order_email) else typed(order_email, oseq, 'order_email_case') end as email,
    case when has_phone(i) and rnd(oseq, 'order_phone') < 0.8 then phone_typed(person(i), oseq) end as phone,
    person(i) as person, created_at, typed_code(canonical_code, oseq) as code, source_name(oseq) as source_name,
    false as test
from c;

-- Guest checkouts: no customer_id; emails per guest_email (an account's in another case, the shared placeholder, ...).
insert into ob by name
with g as (
    select g, current_email(guest_match_i(g)) as match_email, unnest(range(case when rnd(g, 'guest_orders') < 0.15 then 2 else 1 end)) as n
    from range(1, ceil({{customers}} * 0.1)::bigint + 1) r(g)
)
select 70000000000 + g * 4 + n as oseq, null as customer_id, guest_email(g, match_email) as email,
    case when rnd(g, 'guest_phone') < 0.4 then phone_typed(guest_person(g), g) end as phone,
    guest_person(g) as person, days_ago(730 * pow(rnd(g * 4 + n, 'guest_at'), 1.3)) as created_at,
    typed_code(case when rnd(g * 4 + n, 'guest_code') < 0.12 then 'WELCOME10' end, g * 4 + n) as code,
    case when guest_kind(g) = 'staff_test' then 'web' else source_name(70000000000 + g * 4 + n) end as source_name,
    guest_kind(g) = 'staff_test' as test
from g;

-- Abandoned checkouts: the last 90 days, plus an evenly spaced last-24h population (see is_recent_cart).
create or replace temp table checkout_keys as
select cseq, days_ago(90 * rnd(cseq, 'checkout_at')) as created_at
from range(1, ceil({{customers}} * 0.3)::bigint + 1) r(cseq)
union all
select 100000000 + j, plus_s(until_ts(), -86400 * (j + 0.5) / greatest(48, ceil({{customers}} * 0.004)))
from range(greatest(48, ceil({{customers}} * 0.004))::bigint) r(j);

create or replace temp view accounts as select i, email, created_at from people;

-- Browsing: customers' sessions (anonymous before the account exists or on a second device) and visitors'.
create or replace temp table sessions as
with s as (
    select i * 16 + s as sid, i, created_at, rnd(i * 16 + s, 'device') < 0.25 as second_device,
        days_ago(730 * pow(rnd(i * 16 + s, 'session_at'), 1.5)) as started_at
    from (select i, created_at, unnest(range(least(floor(-ln(greatest(rnd(i, 'sessions'), 1e-9)) * 1.5), 8)::bigint)) as s from people)
)
select sid, anon_id(i * 4 + second_device::integer) as anonymous_id,
    case when started_at > created_at and not second_device and rnd(sid, 'login') < 0.6 then cust_id(i)::varchar end as user_id,
    started_at, null::bigint as views, null::bigint as adds
from s
union all
select 1000000000000 + v, anon_id(800000000000 + v), null, days_ago(730 * pow(rnd(v, 'visit_at'), 1.2)), null, null
from range(1, ceil({{customers}} * 0.25)::bigint + 1) r(v);

-- Planted intent, logged in on the main device in the last week (session keys i * 16 + 12..13): high intent
-- (two sessions, 5 views and a cart add, no order for 50+ days or never) and browse abandoners (2-4 views,
-- no cart, no order for 10+ days or never).
insert into sessions by name
select i * 16 + 12 + j as sid, anon_id(i * 4) as anonymous_id, cust_id(i)::varchar as user_id,
    plus_s(until_ts(), -86400 * (1 + 2.5 * j + 2.4 * rnd(i * 16 + j, 'intent_at'))) as started_at,
    case when is_high_intent(i) then 3 - j else 2 + hash({{seed}}::bigint, i, 'abandon_views') % 3 end as views,
    case when is_high_intent(i) then 1 - j else 0 end as adds
from people, range(case when is_high_intent(i) then 2 else 1 end) r(j)
where (is_high_intent(i) and (not buyer or days_ago(last_days) < plus_s(until_ts(), -50 * 86400))
        or is_browse_abandoner(i) and (not buyer or days_ago(last_days) < plus_s(until_ts(), -10 * 86400)))
    and not is_gone(i) and created_at < plus_s(until_ts(), -8 * 86400);

-- Identify calls beyond the one at signup (sample_insert.sql): logins on a second device, the new address
-- of email changers, and visitors who leave an email (a third of them an existing customer's, in any case).
create or replace temp table identify_base as
select i * 4 + 1 as k, anon_id(i * 4 + 1) as anonymous_id, cust_id(i)::varchar as user_id, lower(email) as email, null::varchar as phone,
    plus_s(created_at, (epoch(until_ts()) - epoch(created_at)) * rnd(i, 'second_device_at')) as ts
from people where rnd(i, 'second_device') < 0.35 and rnd(i, 'segment') < 0.7 and not is_gone(i)
union all
select i * 4 + 2, anon_id(i * 4), cust_id(i)::varchar, email, null, email_changed_at
from people where old_email is not null and rnd(i, 'segment') < 0.7 and not is_gone(i)
union all
select 800000000000 + v, anon_id(800000000000 + v), null,
    case when rnd(v, 'lead_known') < 0.3 then typed(p.email, v, 'lead_case')
        else personal_email(first_name(130000000 + v), last_name(130000000 + v), 130000000 + v) end,
    null, plus_s(days_ago(730 * pow(rnd(v, 'visit_at'), 1.2)), 90)
from (select v, 1 + hash({{seed}}::bigint, v, 'lead_i') % {{customers}} as i from range(1, ceil({{customers}} * 0.25)::bigint + 1) r(v))
join people p using (i)
where rnd(v, 'lead') < 0.15;

-- Salesforce: ~40% of customers (the old address for email changers, case and padding vary) plus CRM-only
-- leads; a few in the recycle bin.
insert into salesforce.contact by name
with c as (
    select i as k, coalesce(old_email, email) as email, first_name(person(i)) as first_name, last_name(i) as last_name,
        person(i) as person, created_at
    from people where rnd(i, 'salesforce') < 0.4 and not is_ring(i)
    union all
    select 1000000000 + j, case when rnd(j, 'crm_email') < 0.9 then personal_email(first_name(140000000 + j), last_name(140000000 + j), 140000000 + j)
            when rnd(j, 'crm_email') < 0.95 then 'noemail@example.com' end,
        first_name(140000000 + j), last_name(140000000 + j), 140000000 + j, days_ago(900 * rnd(j, 'crm_at'))
    from range(1, ceil({{customers}} * 0.15)::bigint + 1) r(j)
), t as (
    select *, plus_s(created_at, -86400 * 60 * rnd(k, 'sf_created')) as created_date,
        plus_s(created_at, (epoch(until_ts()) - epoch(created_at)) * pow(rnd(k, 'sf_modified'), 2)) as last_modified_date
    from c
)
select sf_id('003', k) as id, typed(email, k, 'sf_case') as email,
    case when rnd(k, 'sf_phone') < 0.6 then phone_typed(person, k * 8 + 1) end as phone,
    case when rnd(k, 'sf_mobile') < 0.4 then phone_typed(person, k * 8 + 2) end as mobile_phone,
    first_name, last_name, sf_id('001', hash({{seed}}::bigint, k, 'sf_account') % ceil({{customers}} / 50 + 1)::bigint) as account_id,
    rnd(k, 'sf_opt_out') < 0.08 as has_opted_out_of_email, rnd(k, 'sf_deleted') < 0.01 as is_deleted,
    created_date, last_modified_date, synced(last_modified_date, k) as _fivetran_synced, rnd(k, 'sf_fivetran_deleted') < 0.003 as _fivetran_deleted
from t;

insert into shopify.shop by name
select 57216434289 as id, 'Relay Demo Outfitters' as name, 'relay-demo.example' as domain, 'hello@relay-demo.example' as email,
    'USD' as currency, 'America/New_York' as iana_timezone, plus_s(until_ts(), -1100 * 86400) as created_at,
    plus_s(until_ts(), -420) as _fivetran_synced, false as _fivetran_deleted;

-- Refunds of orders the loader never saw (migrated from a legacy store): unknown order and line ids.
create or replace temp table unknown_refund as
select 900000000000 + j as oseq, 5500000000000 + j * 7 as order_id, days_ago(400 * rnd(j, 'legacy_refund_at')) as created_at,
    round(20 + 100 * rnd(j, 'legacy_refund_amount'), 2) as subtotal
from range(1, greatest(3, {{customers}} // 20000) + 1) r(j);
insert into shopify.refund by name
select refund_id(oseq) as id, order_id, created_at, plus_s(created_at, 3) as processed_at, 'Legacy order, imported' as note,
    false as restock, 71000001 as user_id, synced(created_at, oseq) as _fivetran_synced
from unknown_refund;
insert into shopify.order_line_refund by name
select line_refund_id(oseq, 0) as id, refund_id(oseq) as refund_id, 13000000000000 + oseq as order_line_id, 1 as quantity,
    subtotal, 0.0 as total_tax, 'no_restock' as restock_type, synced(created_at, oseq) as _fivetran_synced
from unknown_refund;
insert into shopify."transaction" by name
select txn_id(oseq, 3) as id, order_id, refund_id(oseq) as refund_id, subtotal as amount, 'refund' as kind, 'success' as status,
    'shopify_payments' as gateway, 'USD' as currency, created_at, created_at as processed_at, false as test,
    synced(created_at, oseq) as _fivetran_synced
from unknown_refund;

insert into _relay_sample.params values ({{seed}}, {{customers}}, timestamp '{{until}}', timestamp '{{until}}',
    timestamp '{{landed_at}}');
