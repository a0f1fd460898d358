-- The next {{hours}} hours after the stored as-of: ({{since}}, {{until}}]. Builds the same base tables as
-- sample_generate.sql for new activity; sample_insert.sql writes them and sample_events.sql adds what falls
-- due (refunds, late checkout completions, late Order Completed events).

-- (A warehouse generated before landed_at existed gains it here.)
alter table _relay_sample.params add column if not exists landed_at timestamp;
update _relay_sample.params set as_of = until_ts(), landed_at = timestamp '{{landed_at}}';

-- One slot per hour; volumes scale with the shop and follow the time of day (peak ~20:00 UTC).
create or replace temp table slots as
select epoch(since_ts())::bigint // 3600 + s as slot, plus_s(since_ts(), 3600 * s) as starts_at,
    1 + 0.5 * cos(2 * pi() * (hour(plus_s(since_ts(), 3600 * s)) + 0.5 - 20) / 24) as traffic
from range({{hours}}) r(s);

-- `per_hour` items of one kind per slot: a key unique to (slot, item) and a time inside the hour.
create or replace temp macro hourly(per_hour, salt) as table
select slot * 100000 + j as key, plus_s(starts_at, 3600 * rnd(slot * 100000 + j, salt)) as happened_at
from slots, unnest(range(least(round(traffic * per_hour), 99999)::bigint)) t(j);

create or replace temp table cust_base as
select 100000000000 + key as i, happened_at as created_at, happened_at as updated_at
from hourly(greatest(2, {{customers}} / 10000), 'new_customer');

create or replace temp table checkout_keys as
select 1000000000 + key as cseq, happened_at as created_at from hourly(greatest(3, {{customers}} / 4000), 'checkout');

-- Every customer a checkout can pick (see checkout_i), existing or gone.
create or replace temp table accounts as
select k.i, current_email(k.i) as email, c.created_at
from (select distinct checkout_i(cseq) as i from checkout_keys) k
left join shopify.customer c on c.id = cust_id(k.i);

create or replace temp table last_order as
select customer_id, max(created_at) as last_at, count(*) as orders
from shopify."order" where customer_id is not null group by all;

-- Orders of existing customers (anyone, and customers in the 60-180 day win-back window), of the
-- customers who just signed up (40% buy at once), and of guests.
create or replace temp table ob as
with picked as (
    select 300000000000 + key * 4 as oseq, happened_at as created_at, 1 + hash({{seed}}::bigint, key, 'repeat_i') % {{customers}} as i
    from hourly(greatest(2, {{customers}} / 10000), 'repeat_order')
    union all
    -- win-back candidates in random order, the r-th one buying in hour r % hours
    select 300000000000 + ((epoch(since_ts())::bigint // 3600 + r % {{hours}}) * 100000 + r // {{hours}}) * 4 + 1,
        plus_s(since_ts(), 3600 * (r % {{hours}}) + 3600 * rnd(cust_id(i), 'winback_at')), i
    from (
        select cust_i(customer_id) as i, row_number() over (order by hash({{seed}}::bigint, customer_id, epoch(since_ts())::bigint), customer_id) - 1 as r
        from last_order
        where last_at between plus_s(since_ts(), -180 * 86400) and plus_s(since_ts(), -60 * 86400)
        qualify r < {{hours}} * greatest(1, {{customers}} // 50000)
    )
    union all
    select 300000000000 + (i - 100000000000) * 4 + 2, plus_s(created_at, 120 + 1080 * rnd(i, 'first_order_at')), i
    from cust_base where rnd(i, 'first_order') < 0.4
), c as (
    select p.*, current_email(p.i) as account_email, coalesce(lo.orders, 0) as n,
        date_diff('day', lo.last_at, p.created_at) as gap_days
    from picked p
    join shopify.customer cust on cust.id = cust_id(p.i) and cust.created_at < p.created_at  -- an account to order with
    left join last_order lo on lo.customer_id = cust_id(p.i)
    union all
    -- just-created accounts are not in shopify.customer yet
    select p.*, current_email(p.i), 0, null from picked p where p.i >= 100000000000
)
select oseq, cust_id(i) as customer_id,
    case when rnd(oseq, 'order_email') < 0.85 then lower(account_email) else typed(account_email, oseq, 'order_email_case') end as email,
    case when has_phone(i) and rnd(oseq, 'order_phone') < 0.8 then phone_typed(person(i), oseq) end as phone,
    person(i) as person, created_at, typed_code(canonical_code, oseq) as code, source_name(oseq) as source_name, false as test
from (select *, order_code(oseq, n, i, created_at, gap_days) as canonical_code from c);

insert into ob by name
with g as (
    select 300000000000 + key * 4 + 3 as oseq, happened_at as created_at, 1000000000 + key as g
    from hourly(greatest(1, {{customers}} / 50000), 'guest_order')
), m as (
    select *, current_email(guest_match_i(g)) as match_email from g
)
select oseq, null as customer_id, guest_email(g, match_email) as email,
    case when rnd(g, 'guest_phone') < 0.4 then phone_typed(guest_person(g), g) end as phone,
    guest_person(g) as person, created_at,
    typed_code(case when rnd(oseq, 'guest_code') < 0.12 then 'WELCOME10' end, oseq) as code,
    source_name(oseq) as source_name, guest_kind(g) = 'staff_test' as test
from m;

-- Two existing accounts a new shared phone links: a customer checks out as a guest with their account email
-- and a phone another account holds (their own second account the shop never linked, or a partner's). The
-- next build merges the two people (marts.identity_merges), and the people syncs carry the merge.
insert into ob by name
with l as (
    select 700000000000 + key as oseq, happened_at as created_at,
        1 + hash({{seed}}::bigint, key, 'link_i') % {{customers}} as i,
        1 + hash({{seed}}::bigint, key, 'link_j') % {{customers}} as j
    from hourly(greatest(1, {{customers}} / 10000), 'account_link')
)
select oseq, null as customer_id, lower(current_email(i)) as email, phone_typed(person(j), oseq) as phone,
    person(i) as person, created_at, null::varchar as code, source_name(oseq) as source_name, false as test
from l
where person(i) <> person(j) and has_phone(j) and not is_gone(i) and not is_gone(j);

-- Browsing by existing customers (logged in or not, either device) and by new visitors.
create or replace temp table sessions as
with s as (
    select 2000000000000 + key * 2 as sid, happened_at as started_at, 1 + hash({{seed}}::bigint, key, 'session_i') % {{customers}} as i
    from hourly(greatest(10, {{customers}} / 1000), 'session')
)
select sid, anon_id(i * 4 + (rnd(sid, 'device') < 0.25)::integer) as anonymous_id,
    case when rnd(sid, 'device') >= 0.25 and rnd(sid, 'login') < 0.6 and not is_gone(i) then cust_id(i)::varchar end as user_id,
    started_at, null::bigint as views, null::bigint as adds
from s
union all
select 2000000000000 + key * 2 + 1, anon_id(800000000000 + 100000000000 + key), null, happened_at, null, null
from hourly(greatest(3, {{customers}} / 4000), 'visit');

-- New visitors who leave an email (a third of them an existing customer's) and second-device logins.
create or replace temp table identify_base as
with v as (
    select 100000000000 + key as v, happened_at, 1 + hash({{seed}}::bigint, key, 'lead_i') % {{customers}} as i
    from hourly(greatest(3, {{customers}} / 4000), 'visit')
    where rnd(100000000000 + key, 'lead') < 0.15
)
select 800000000000 + v as k, anon_id(800000000000 + v) as anonymous_id, null::varchar as user_id,
    case when rnd(v, 'lead_known') < 0.3 then typed(current_email(i), v, 'lead_case')
        else personal_email(first_name(130000000 + v), last_name(130000000 + v), 130000000 + v) end as email,
    null::varchar as phone, plus_s(happened_at, 90) as ts
from v
union all
select 3000000000000 + key, anon_id(i * 4 + 1), cust_id(i)::varchar, lower(current_email(i)), null, happened_at
from (select *, 1 + hash({{seed}}::bigint, key, 'login_i') % {{customers}} as i
      from hourly(greatest(1, {{customers}} / 20000), 'second_device_login'))
where not is_gone(i);
