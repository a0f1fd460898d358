-- The offers working (sample_data.append with an offer lift U = {{offer_lift_bp}} / 10000). offer_arms is
-- Relay's last build: each person with a Shopify account, their last valid order, holdout and exclusions
-- (suppressed or abusing discounts). Of the people an offer reaches (entering its window in this run, the
-- conversion window closed by its end, neither held out nor excluded), those who would not buy by
-- themselves within the conversion window buy with the offer's code with probability U; and discount
-- abusers redeem the codes where they may not (leakage). Runs after sample_insert.sql (so the recovered
-- checkouts are among the orders that "would have happened anyway") and before sample_orders.sql writes
-- the orders. Every planted conversion is a row of _relay_sample.offer_planted: the reporting marts must
-- count it in the treated arm and recover the effect.

create or replace temp table known_people as
select person(cust_i(customer_id)) as person, * from offer_arms;

create table if not exists _relay_sample.offer_planted (offer varchar, order_id bigint, customer_id bigint,
    entered_at timestamp, ordered_at timestamp);

-- Winback: the window opens {{winback_days}} days after the last order, and the offer converts for
-- {{winback_conversion_days}} days. Only people with no order since the build can enter it.
create or replace temp table winback_planted as
with entries as (
    select k.*, plus_s(k.last_order_at, 86400 * {{winback_days}}) as entered_at
    from known_people k
    where not k.is_holdout and not k.is_excluded
        and plus_s(k.last_order_at, 86400 * {{winback_days}}) > since_ts()
        and plus_s(k.last_order_at, 86400 * ({{winback_days}} + {{winback_conversion_days}})) <= until_ts()
), lapsing as (
    select e.* from entries e
    where not exists (select 1 from ob where ob.person = e.person
                      and ob.created_at < plus_s(e.entered_at, 86400 * {{winback_conversion_days}}))
)
select customer_id, person, entered_at,
    600000000000 + hash({{seed}}::bigint, customer_id, entered_at) % 50000000000 as oseq,
    plus_s(entered_at, 86400 * {{winback_conversion_days}} * rnd(customer_id, 'offer_at')) as ordered_at
from lapsing
where rnd(hash(customer_id, entered_at) % 1000000007, 'offer_converts') < {{offer_lift_bp}} / 10000;

-- Cart: the marts count a person once a month, from the first checkout that did not convert within
-- {{cart_grace_minutes}} minutes; the window ends {{cart_window_hours}} hours after that checkout started.
-- The offer works on that checkout when it is this run's (checkouts of earlier runs this month count as
-- earlier entries). Guests who typed an account's email are that account's person too.
create or replace temp table cart_planted as
with month_checkouts as (
    select id - 31000000000000 as cseq, created_at, checkout_person(id - 31000000000000) as person
    from shopify.abandoned_checkout
    where not _fivetran_deleted and checkout_who(id - 31000000000000) < 0.80
        -- a guest who typed a household's shared email is no one in particular
        and (customer_id is not null or not in_household(checkout_i(id - 31000000000000)))
        and created_at >= date_trunc('month', since_ts())
), entries as (
    select c.* from month_checkouts c
    where coalesce(recover_after_s(c.cseq), 86400 * 365) >= 60 * {{cart_grace_minutes}}
        and not exists (select 1 from ob where ob.person = c.person and ob.created_at >= c.created_at
                        and ob.created_at < plus_s(c.created_at, 60 * {{cart_grace_minutes}}))
    qualify row_number() over (partition by c.person, date_trunc('month', c.created_at) order by c.created_at) = 1
), reached as (
    select e.cseq, e.person, k.customer_id, plus_s(e.created_at, 60 * {{cart_grace_minutes}}) as entered_at,
        plus_s(e.created_at, 3600 * {{cart_window_hours}}) as window_ends_at
    from entries e
    join known_people k on k.person = e.person
    where visible(e.created_at) and not k.is_holdout and not k.is_excluded
        and plus_s(e.created_at, 60 * {{cart_grace_minutes}} + 86400 * {{cart_conversion_days}}) <= until_ts()
)
select r.cseq, r.customer_id, r.person, r.entered_at, 800000000000 + r.cseq as oseq,
    -- well inside the window, whatever the order's seconds
    plus_s(r.entered_at, 600 + (epoch(r.window_ends_at) - epoch(r.entered_at) - 1200) * rnd(r.cseq, 'offer_at')) as ordered_at
from reached r
where not exists (select 1 from ob where ob.person = r.person and ob.created_at >= r.entered_at
                  and ob.created_at < r.window_ends_at)
    and rnd(r.cseq, 'offer_converts') < {{offer_lift_bp}} / 10000;

create or replace temp table planted as
select *, 'WINBACK20' as code, 'winback' as offer from winback_planted
union all by name
select * exclude (cseq), 'TAKE5' as code, 'cart' as offer from cart_planted;

insert into _relay_sample.offer_planted by name
select offer, order_id(oseq) as order_id, customer_id, entered_at, ordered_at from planted;

-- The planted orders, logged in to the person's account (a guest's typed email may be one a household shares,
-- which identifies no one).
insert into ob by name
select oseq, customer_id, lower(current_email(cust_i(customer_id))) as email, null::varchar as phone, person,
    ordered_at as created_at, code, source_name(oseq) as source_name, false as test
from planted;

-- Leakage: in a month, some discount abusers redeem each offer's code at a random moment, eligible or not.
insert into ob by name
select 650000000000 + k % 50000000000 as oseq, customer_id, lower(current_email(cust_i(customer_id))) as email,
    null::varchar as phone, person,
    plus_s(since_ts(), (epoch(until_ts()) - epoch(since_ts())) * rnd(k % 1000000007, 'abuser_at')) as created_at,
    code, 'web' as source_name, false as test
from (select *, hash({{seed}}::bigint, customer_id, since_ts(), code) as k
      from known_people, (values ('WINBACK20', 0.1), ('TAKE5', 0.05)) codes(code, monthly_share)
      where is_abuser)
where rnd(k % 1000000007, 'abuser_redeems') < monthly_share * least(1, {{hours}} / 720);
