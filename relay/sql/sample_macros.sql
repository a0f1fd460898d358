-- Building blocks of the sample-data generator (relay/sample_data.py renders {{seed}}, {{customers}},
-- {{since}} and {{until}}). Every "random" value is a hash of (seed, key, salt): the same arguments give
-- the same rows whatever the thread count or row order. Rows become visible in the window (since, until].

create or replace temp macro rnd(k, salt) as (hash({{seed}}::bigint, (k)::bigint, salt) % 1000000) / 1e6;
-- n = len(choices), spelled out: DuckDB does not constant-fold len() of a literal list (10x slower).
create or replace temp macro pick(choices, n, k, salt) as choices[1 + (hash({{seed}}::bigint, (k)::bigint, salt) % n)::integer];
-- Roughly standard normal (three uniforms), for log-normal prices and intervals.
create or replace temp macro gauss(k, salt) as (rnd(k, salt || '1') + rnd(k, salt || '2') + rnd(k, salt || '3') - 1.5) * 2;
create or replace temp macro hex16(k, salt) as lower(lpad(to_hex(hash({{seed}}::bigint, (k)::bigint, salt)), 16, '0'));
-- 128 hashed bits printed through DuckDB's uuid type: much cheaper than formatting hex by hand.
create or replace temp macro bits128(k, salt, high_mask, high_set, low_mask, low_set) as (
    (((hash({{seed}}::bigint, (k)::bigint, salt) & high_mask::ubigint) | high_set::ubigint)::uhugeint << 64)
    | ((hash({{seed}}::bigint, (k)::bigint, salt || '2') & low_mask::ubigint) | low_set::ubigint)::uhugeint
)::uuid::varchar;
create or replace temp macro hex32(k, salt) as replace(bits128(k, salt, 18446744073709551615, 0, 18446744073709551615, 0), '-', '');
-- A version-4 UUID (version nibble 4, variant bits 10).
create or replace temp macro uuid_of(k, salt) as bits128(k, salt, 18446744073709490175, 16384, 4611686018427387903, 9223372036854775808);

-- Time: microsecond arithmetic on naive UTC timestamps.
create or replace temp macro since_ts() as timestamp '{{since}}';
create or replace temp macro until_ts() as timestamp '{{until}}';
create or replace temp macro plus_s(ts, seconds) as make_timestamp(epoch_us(ts) + ((seconds) * 1e6)::bigint);
create or replace temp macro visible(ts) as ts > since_ts() and ts <= until_ts();
-- Loaders write a row a few minutes after it changes, never after "now".
create or replace temp macro synced(ts, k) as least(plus_s(ts, 60 + 1500 * rnd(k, 'sync')), until_ts());
-- Seasonality without rejection sampling: the monotonic warp x - c(x) + c(until) with c(x) = a P/2pi sin(2pi (x - peak)/P)
-- has density 1 / (1 - a cos(...)), highest at the peak, and keeps `until` fixed so "d days before as_of" keeps
-- its meaning for recent activity. Applied yearly (late November), weekly (Sunday evening), daily (20:00 UTC),
-- one after the other so that each cycle keeps its phase.
create or replace temp macro warp(x, a, period, peak, anchor) as
    x - a * period / (2 * pi()) * (sin(2 * pi() * (x - peak) / period) - sin(2 * pi() * (anchor - peak) / period));
create or replace temp macro until_day() as epoch_us(until_ts()) / 86400e6;
-- (1970-01-01, day 0, was a Thursday; day 331 was 28 November.)
create or replace temp macro days_ago(d) as make_timestamp((86400e6 *
    warp(warp(warp(until_day() - (d), 0.40, 365.25, 331, until_day()), 0.25, 7, 3.8, until_day()), 0.45, 1, 0.83, until_day()))::bigint);

-- Id spaces. Keys (i = customer index, oseq = order key, cseq = checkout key) are disjoint ranges:
-- customers 1..N (appended ones from 1e11); orders i*64+n, guests 7e10+, recovered checkouts 1e11+cseq,
-- appended 3e11+, unknown-order refunds 9e11+; checkouts 1.. (history), 1e8+ (last 24h), 1e9+ (appended).
create or replace temp macro cust_id(i) as 6800000000000 + i;
create or replace temp macro cust_i(id) as id - 6800000000000;
create or replace temp macro order_id(oseq) as 5600000000000 + oseq;
create or replace temp macro line_id(oseq, idx) as 14000000000000 + oseq * 16 + idx;
create or replace temp macro line_refund_id(oseq, idx) as 15000000000000 + oseq * 16 + idx;
create or replace temp macro txn_id(oseq, j) as 7100000000000 + oseq * 4 + j;
create or replace temp macro refund_id(oseq) as 900000000000 + oseq;
create or replace temp macro checkout_id(cseq) as 31000000000000 + cseq;
create or replace temp macro checkout_token(cseq) as hex32(cseq, 'token');
create or replace temp macro anon_id(k) as uuid_of(k, 'anon');
-- Salesforce ids: 18 characters, '003' contacts, '001' accounts.
create or replace temp macro sf_id(prefix, k) as prefix || 'Dn' || lpad(upper(to_hex((k)::bigint)), 10, '0') || 'IAW';

-- Who a customer is. The rare cases use index arithmetic so that every scale has some.
-- The fraud ring: about 40 accounts (every ring_step-th), fewer in tiny shops.
create or replace temp macro ring_step() as greatest({{customers}} // 40, 10);
create or replace temp macro is_ring(i) as i <= {{customers}} and i % ring_step() = ring_step() // 2;
create or replace temp macro is_gone(i) as i <= {{customers}} and i % 499 = 123;
create or replace temp macro is_heavy_redeemer(i) as rnd(i, 'heavy') < 0.03;
create or replace temp macro is_serial_refunder(i) as rnd(i, 'serial') < 0.015;
-- Households: 2-3 people (consecutive indexes) sharing one email address.
create or replace temp macro in_household(i) as rnd(i // 3, 'household') < 0.012 and (i % 3 < 2 or rnd(i // 3, 'household3') < 0.5);
-- A second account of the previous customer: same person, name, phone and address, another email.
create or replace temp macro is_second_account(i) as
    i % 2 = 0 and rnd(i, 'dup') < 0.03 and not in_household(i) and not in_household(i - 1) and not is_ring(i) and not is_ring(i - 1);
create or replace temp macro person(i) as case when is_second_account(i) then i - 1 else i end;
create or replace temp macro email_changed(i) as rnd(i, 'changed') < 0.03 and not in_household(i) and not is_ring(i);
create or replace temp macro uses_placeholder(i) as rnd(i, 'placeholder') < 0.002;

create or replace temp macro first_name(p) as pick(['Olivia', 'Liam', 'Emma', 'Noah', 'Ava', 'Oliver', 'Sophia', 'Elijah',
    'Isabella', 'James', 'Mia', 'William', 'Amelia', 'Benjamin', 'Harper', 'Lucas', 'Evelyn', 'Henry', 'Abigail', 'Alexander',
    'Emily', 'Mason', 'Ella', 'Michael', 'Elizabeth', 'Ethan', 'Camila', 'Daniel', 'Luna', 'Jacob', 'Sofia', 'Logan', 'Avery',
    'Jackson', 'Mila', 'Levi', 'Aria', 'Sebastian', 'Scarlett', 'Mateo', 'Penelope', 'Jack', 'Layla', 'Owen', 'Chloe', 'Theodore',
    'Priya', 'Wei', 'Fatima', 'José', 'Zoë', 'Siobhán', 'Aoife', 'Kwame', 'Yuki', 'Lars', 'Ingrid', 'Rahul', 'Ana', 'Mohammed'], 60, p, 'first');
-- Households share a family name; second accounts share the person's.
create or replace temp macro last_name(i) as pick(['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis',
    'Rodriguez', 'Martinez', 'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson',
    'Martin', 'Lee', 'Perez', 'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson', 'Walker',
    'Young', 'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores', 'Green', 'Adams', 'Nelson', 'Baker',
    'Hall', 'Rivera', 'Campbell', 'Mitchell', 'Carter', 'Roberts', 'O''Brien', 'Müller', 'Kowalski', 'Patel', 'Chen', 'Kim',
    'Singh', 'Okafor', 'Dubois', 'van der Berg'], 60, case when in_household(i) then i // 3 * 3 else person(i) end, 'last');
create or replace temp macro slug(name) as regexp_replace(strip_accents(lower(name)), '[^a-z]', '', 'g');
create or replace temp macro email_domain(k) as
    pick(['example.com', 'example.net', 'example.org', 'mail.example.com', 'inbox.example.net', 'post.example.org'], 6, k, 'domain');
-- A clean, unique address in one of the usual local-part patterns.
create or replace temp macro personal_email(first, last, k) as
    case hash({{seed}}::bigint, (k)::bigint, 'pattern') % 4
        when 0 then slug(first) || '.' || slug(last) || k
        when 1 then slug(first)[1] || slug(last) || k
        when 2 then slug(first) || '_' || slug(last) || '_' || k
        else slug(last) || slug(first) || k
    end || '@' || email_domain(k);
create or replace temp macro signup_email(i) as case
    when is_ring(i) then 'deal.finder' || i || '@tempmail.example'
    when in_household(i) then 'the' || slug(last_name(i)) || 's' || (i // 3) || '@' || email_domain(i // 3)
    else personal_email(first_name(person(i)), last_name(i), i)
end;
create or replace temp macro current_email(i) as case
    when email_changed(i) then slug(first_name(person(i))) || slug(last_name(i)) || '.' || i || '@newjob.example.com'
    else signup_email(i)
end;
-- How a value is typed into a form: mostly clean, sometimes shouted, capitalised or padded.
-- (Pass columns, not expressions: DuckDB evaluates every CASE branch, so expensive arguments cost 5x.)
create or replace temp macro typed(e, k, salt) as case
    when rnd(k, salt) < 0.05 then upper(e)
    when rnd(k, salt) < 0.10 then upper(e[1]) || e[2:]
    when rnd(k, salt) < 0.13 then ' ' || e
    when rnd(k, salt) < 0.15 then e || '  '
    else e
end;
-- The email on the Shopify account (cur = current_email(i)): typed, or missing, malformed (no @) or
-- already SHA-256 hashed by an upstream import.
create or replace temp macro account_email(i, cur) as case
    when uses_placeholder(i) then pick(['noemail@example.com', 'NoEmail@example.com', ' noemail@example.com'], 3, i, 'placeholder_case')
    when is_ring(i) or in_household(i) then cur
    when rnd(i, 'email_mess') < 0.015 then null
    when rnd(i, 'email_mess') < 0.022 then replace(cur, '@', pick(['', ' at ', '.'], 3, i, 'no_at'))
    when rnd(i, 'email_mess') < 0.030 then sha256(cur)
    else typed(cur, i, 'email_case')
end;

-- Phones: one number per person, unique (odd multiplier = bijection mod 2^27), typed in many formats.
create or replace temp macro phone_q(p) as (((p)::hugeint * 2654435761) % 134217728)::bigint;
create or replace temp macro is_uk(p) as rnd(p, 'uk') < 0.08;
create or replace temp macro phone_typed(p, k) as case
    when is_uk(p) then
        case hash({{seed}}::bigint, (k)::bigint, 'phone_format') % 5
            when 0 then '+44 20 ' || lpad(((phone_q(p) // 10000) % 10000)::varchar, 4, '0') || ' ' || lpad((phone_q(p) % 10000)::varchar, 4, '0')
            when 1 then '0044 20 ' || lpad(((phone_q(p) // 10000) % 10000)::varchar, 4, '0') || ' ' || lpad((phone_q(p) % 10000)::varchar, 4, '0')
            when 2 then '020 ' || lpad(((phone_q(p) // 10000) % 10000)::varchar, 4, '0') || ' ' || lpad((phone_q(p) % 10000)::varchar, 4, '0')
            when 3 then '+4420' || lpad(((phone_q(p) // 10000) % 10000)::varchar, 4, '0') || lpad((phone_q(p) % 10000)::varchar, 4, '0')
            else '44-20-' || lpad(((phone_q(p) // 10000) % 10000)::varchar, 4, '0') || '-' || lpad((phone_q(p) % 10000)::varchar, 4, '0')
        end
    else
        replace(replace(replace(
            case when rnd(k, 'phone_invalid') < 0.03
                then pick(['EEE-LLLL', 'n/a', '000-000-0000', '+1 (AAA) EEE', '12345'], 5, k, 'phone_bad')
                else pick(['+1 (AAA) EEE-LLLL', 'AAA.EEE.LLLL', 'AAAEEELLLL', '+1AAAEEELLLL', '(AAA) EEE-LLLL', '1-AAA-EEE-LLLL',
                           'AAA-EEE-LLLL', '+1 AAA EEE LLLL'], 8, k, 'phone_format')
            end,
            'AAA', ['415', '212', '312', '646', '718', '305', '512', '206', '617', '303', '404', '602', '612', '615', '215', '213',
                    '503'][1 + phone_q(p) // 10000 // 800]),
            'EEE', (200 + (phone_q(p) // 10000) % 800)::varchar),
            'LLLL', lpad((phone_q(p) % 10000)::varchar, 4, '0'))
end;
create or replace temp macro has_phone(i) as
    rnd(i, 'has_phone') < 0.55 or is_second_account(i) or is_second_account(i + 1);

-- Addresses: one per person (a street in a city); the fraud ring half shares one drop address.
create or replace temp macro us_city(p) as pick([
    {'city': 'San Francisco', 'zip': 94102, 'tax': 0.08625}, {'city': 'New York', 'zip': 10001, 'tax': 0.08875},
    {'city': 'Brooklyn', 'zip': 11201, 'tax': 0.08875}, {'city': 'Chicago', 'zip': 60601, 'tax': 0.1025},
    {'city': 'Austin', 'zip': 78701, 'tax': 0.0825}, {'city': 'Seattle', 'zip': 98101, 'tax': 0.1025},
    {'city': 'Portland', 'zip': 97201, 'tax': 0.0}, {'city': 'Denver', 'zip': 80202, 'tax': 0.0881},
    {'city': 'Miami', 'zip': 33101, 'tax': 0.07}, {'city': 'Boston', 'zip': 2108, 'tax': 0.0625},
    {'city': 'Los Angeles', 'zip': 90012, 'tax': 0.095}, {'city': 'Atlanta', 'zip': 30303, 'tax': 0.089},
    {'city': 'Phoenix', 'zip': 85004, 'tax': 0.086}, {'city': 'Minneapolis', 'zip': 55401, 'tax': 0.08025},
    {'city': 'Nashville', 'zip': 37203, 'tax': 0.0925}, {'city': 'Philadelphia', 'zip': 19103, 'tax': 0.08}], 16, p, 'city');
create or replace temp macro uk_city(p) as pick(['London', 'Manchester', 'Bristol', 'Leeds'], 4, p, 'city');
create or replace temp macro shares_ring_address(i) as is_ring(i) and i // ring_step() % 2 = 0;
create or replace temp macro address_1(p, ring_drop) as case when ring_drop then '77 Harbor Way, Unit 3'
    else (10 + hash({{seed}}::bigint, (p)::bigint, 'street_no') % 9000)::varchar || ' ' || pick(['Main St', 'Oak Ave', 'Maple Dr',
        'Cedar Ln', 'Pine St', 'Elm St', 'Washington Ave', 'Lake Rd', 'Hill St', 'Park Ave', 'Sunset Blvd', 'Mission St',
        'Valencia St', 'Broadway', 'Market St', 'High St', 'Church Rd', 'Station Rd', 'Victoria Rd', 'Mill Ln'], 20, p, 'street')
        || case when rnd(p, 'apt') < 0.25 then ' Apt ' || (1 + hash({{seed}}::bigint, (p)::bigint, 'apt_no') % 40) else '' end end;
create or replace temp macro city(p, ring_drop) as case when ring_drop then 'Newark' when is_uk(p) then uk_city(p) else us_city(p)['city'] end;
create or replace temp macro zip(p, ring_drop) as case when ring_drop then '07102'
    when is_uk(p) then pick(['SW1A', 'M1', 'BS1', 'LS1', 'E2', 'N1'], 6, p, 'postcode') || ' ' || (1 + p % 9) || chr(65 + (p // 9 % 26)::integer) || chr(65 + (p // 234 % 26)::integer)
    else lpad((us_city(p)['zip'] + p % 20)::varchar, 5, '0') end;
create or replace temp macro country(p, ring_drop) as case when is_uk(p) and not ring_drop then 'GB' else 'US' end;
create or replace temp macro tax_rate(p) as case when is_uk(p) then 0.0 else us_city(p)['tax'] end;

-- Payment cards: one per person; the ring pays with a single shared card.
create or replace temp macro card_company(p, ring) as case when ring then 'Visa'
    else pick(['Visa', 'Visa', 'Visa', 'Mastercard', 'Mastercard', 'American Express', 'Discover'], 7, p, 'brand') end;
create or replace temp macro card_bin(p, ring) as case card_company(p, ring)
    when 'Visa' then case when ring then '423456' else '4' || (10000 + hash({{seed}}::bigint, (p)::bigint, 'bin') % 90000) end
    when 'Mastercard' then '5' || (1 + hash({{seed}}::bigint, (p)::bigint, 'bin') % 5) || lpad((hash({{seed}}::bigint, (p)::bigint, 'bin2') % 10000)::varchar, 4, '0')
    when 'American Express' then '37' || lpad((hash({{seed}}::bigint, (p)::bigint, 'bin') % 10000)::varchar, 4, '0')
    else '6011' || lpad((hash({{seed}}::bigint, (p)::bigint, 'bin') % 100)::varchar, 2, '0') end;
create or replace temp macro card_number(p, ring) as
    '•••• •••• •••• ' || case when ring then '4242' else lpad((hash({{seed}}::bigint, (p)::bigint, 'last4') % 10000)::varchar, 4, '0') end;

-- Discount codes as entered (case and padding vary), and what each one is worth.
create or replace temp macro typed_code(code, k) as case
    when code is null then null
    when rnd(k, 'code_case') < 0.80 then code
    when rnd(k, 'code_case') < 0.88 then lower(code)
    when rnd(k, 'code_case') < 0.93 then ' ' || code
    when rnd(k, 'code_case') < 0.97 then code || ' '
    else code[1] || lower(code[2:])
end;
create or replace temp macro code_percent(code) as case upper(trim(code))
    when 'WELCOME10' then 0.10 when 'WINBACK20' then 0.20 when 'VIP15' then 0.15 when 'SPRING25' then 0.25
    when 'BFCM30' then 0.30 else 0.0 end;
create or replace temp macro code_fixed(code) as case when upper(trim(code)) = 'TAKE5' then 5.0 else 0.0 end;
-- Which code (if any) an order uses: first-order welcome, seasonal, win-back after a long gap, VIP; the
-- ring always takes WELCOME10 and heavy redeemers put a code on most orders.
create or replace temp macro order_code(k, n, customer_i, created_at, gap_days) as case
    when is_ring(customer_i) and n = 0 then 'WELCOME10'
    when is_heavy_redeemer(customer_i) and rnd(k, 'code') < 0.85
        then pick(['WELCOME10', 'WINBACK20', 'VIP15', 'SPRING25', 'TAKE5', 'BFCM30'], 6, k, 'heavy_code')
    when n = 0 and rnd(k, 'code') < 0.18 then 'WELCOME10'
    when month(created_at) = 11 and rnd(k, 'code') < 0.20 then 'BFCM30'
    when gap_days > 90 and rnd(k, 'code') < 0.35 then 'WINBACK20'
    when n >= 4 and rnd(k, 'code') < 0.20 then 'VIP15'
    when month(created_at) in (3, 4, 5) and rnd(k, 'code') < 0.10 then 'SPRING25'
    when rnd(k, 'code') < 0.03 then 'TAKE5'
end;

-- Guests (orders without an account): a quarter reuse an account's email in another case or padded,
-- some type the shared placeholder, a few leave it empty. Key g; person key 5e7 + g.
create or replace temp macro guest_kind(g) as case
    when g % 1000 = 1 then 'staff_test'
    when rnd(g, 'guest') < 0.25 then 'account_match'
    when rnd(g, 'guest') < 0.37 then 'placeholder'
    when rnd(g, 'guest') < 0.40 then 'no_email'
    else 'new'
end;
create or replace temp macro guest_match_i(g) as 1 + hash({{seed}}::bigint, (g)::bigint, 'guest_match') % {{customers}};
create or replace temp macro guest_person(g) as case when guest_kind(g) = 'account_match' then person(guest_match_i(g)) else 50000000 + g end;
-- match = current_email(guest_match_i(g)), as a column.
create or replace temp macro guest_email(g, match) as case guest_kind(g)
    when 'staff_test' then 'staff.test@relay-demo.example'
    when 'account_match' then pick([upper(match), '  ' || match || ' ', upper(match[1]) || match[2:] || ' '], 3, g, 'guest_case')
    when 'placeholder' then pick(['noemail@example.com', 'NOEMAIL@EXAMPLE.COM', 'noemail@example.com ', 'NoEmail@Example.com'], 4, g, 'placeholder_case')
    when 'no_email' then null
    else personal_email(first_name(50000000 + g), last_name(50000000 + g), 50000000 + g)
end;

-- Abandoned checkouts: a logged-in customer (55%), a customer's email typed as a guest (25%), a stranger (20%).
-- The last-24h population (cseq 1e8 + j) is evenly spaced with a fixed pattern so every scale has open carts
-- 0-4h and 4-24h old, and carts recovered with on-time and with late completion.
create or replace temp macro checkout_who(cseq) as rnd(cseq, 'who');
create or replace temp macro checkout_i(cseq) as 1 + hash({{seed}}::bigint, (cseq)::bigint, 'who_i') % {{customers}};
create or replace temp macro checkout_person(cseq) as
    case when checkout_who(cseq) < 0.80 then person(checkout_i(cseq)) else 120000000 + cseq % 10000000 end;
create or replace temp macro is_recent_cart(cseq) as cseq >= 100000000 and cseq < 1000000000;
-- In the last-24h population, j % 8 = 3 or 5 convert after 30 minutes and j % 8 = 6 after a day (still open
-- at as_of, they convert during the following appends).
create or replace temp macro recover_after_s(cseq) as case
    when is_recent_cart(cseq) then case when (cseq - 100000000) % 8 in (3, 5) then 1800 when (cseq - 100000000) % 8 = 6 then 86400 end
    when rnd(cseq, 'recover') < 0.18 then 600 + 108000 * pow(rnd(cseq, 'recover_delay'), 2)
end;
-- How long after the order the loader sees completed_at (and Segment receives Order Completed).
create or replace temp macro completion_lag_s(cseq) as case
    when is_recent_cart(cseq) and (cseq - 100000000) % 8 = 3 then 10800 + 28800 * rnd(cseq, 'late')
    when is_recent_cart(cseq) then 60
    when rnd(cseq, 'is_late') < 0.25 then 3600 + 32400 * rnd(cseq, 'late')
    else 20 + 300 * rnd(cseq, 'late')
end;
create or replace temp macro recovered_oseq(cseq) as 100000000000 + cseq;
create or replace temp macro recovered_cseq(oseq) as case when oseq >= 100000000000 and oseq < 200000000000 then oseq - 100000000000 end;

-- Intent. A device's favourite category (k = a hash of its anonymous id): most of its views and adds are
-- in it. Replenishers rebuy their own skincare product on every order (their first line).
create or replace temp macro favourite_category(k) as
    case when rnd(k, 'fan') < 0.6 then pick(['Apparel', 'Accessories', 'Home', 'Skincare'], 4, k, 'fan_category') end;
create or replace temp macro is_replenisher(i) as coalesce(i % 9 = 4, false);
-- Planted in the history (every scale has some): shoppers browsing hard in the last week without buying,
-- and browse abandoners (a few views, no cart).
create or replace temp macro is_high_intent(i) as i % 47 = 5;
create or replace temp macro is_browse_abandoner(i) as i % 47 = 29;

-- Orders and their lines.
create or replace temp macro n_lines(oseq) as 1 + least(floor(ln(greatest(rnd(oseq, 'lines'), 1e-9)) / ln(0.5)), 7)::integer;
create or replace temp macro is_tracked(order_id, source_name, test) as
    source_name in ('web', 'iphone') and not test and rnd(order_id, 'tracked') < 0.85;
-- Serial refunders refund most orders; everybody else about 7%.
create or replace temp macro refund_rate(customer_id) as case when is_serial_refunder(cust_i(customer_id)) then 0.75 else 0.07 end;
create or replace temp macro source_name(oseq) as case
    when rnd(oseq, 'source') < 0.82 then 'web' when rnd(oseq, 'source') < 0.88 then 'pos' when rnd(oseq, 'source') < 0.92 then 'iphone'
    when rnd(oseq, 'source') < 0.96 then 'shopify_draft_order' else '580111' end;
create or replace temp macro gateway(oseq, source_name) as case
    when source_name = 'pos' then 'shopify_payments' when source_name = 'shopify_draft_order' then 'manual'
    when rnd(oseq, 'gateway') < 0.80 then 'shopify_payments' when rnd(oseq, 'gateway') < 0.96 then 'paypal' else 'gift_card' end;
create or replace temp macro page(path) as 'https://relay-demo.example' || path;
-- The storefront's anonymous id behind an order: the customer's main browser, or one per guest order.
create or replace temp macro order_anon(customer_id, order_id) as
    case when customer_id is not null then anon_id(cust_i(customer_id) * 4) else anon_id(3000000000000 + order_id) end;
-- Segment receives most events within seconds; 1% arrive hours late (devices offline).
create or replace temp macro event_lag_s(k, salt) as case when rnd(k, salt || '_late') < 0.01
    then 3600 + 72000 * rnd(k, salt || '_late_by') else 0.2 + 2.3 * rnd(k, salt || '_lag') end;
