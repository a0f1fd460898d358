-- The raw tables exactly as the dbt sources declare them (models/staging/*/_*__sources.yml), recreated
-- empty; the generator then only inserts. Segment tables carry uuid_ts, a loader column staging ignores.

create schema if not exists shopify;
create schema if not exists segment;
create schema if not exists salesforce;
create schema if not exists _relay_sample;

-- landed_at: the wall clock (UTC) when the newest activity, up to as_of, was written. The sample shop lives
-- in a time of its own; freshness checks read "now" as as_of plus the time since it landed.
drop table if exists _relay_sample.offer_planted;  -- what an earlier shop's appends planted (sample_offers.sql)
create or replace table _relay_sample.params (seed bigint, customers bigint, generated_as_of timestamp, as_of timestamp,
    landed_at timestamp);

create or replace table shopify.customer (
    id bigint, email varchar, first_name varchar, last_name varchar, phone varchar, state varchar,
    accepts_marketing boolean, email_marketing_consent_state varchar, email_marketing_consent_opt_in_level varchar,
    email_marketing_consent_consent_updated_at timestamp, sms_marketing_consent_state varchar,
    sms_marketing_consent_consent_updated_at timestamp, verified_email boolean, currency varchar,
    created_at timestamp, updated_at timestamp, _fivetran_synced timestamp, _fivetran_deleted boolean
);

create or replace table shopify.customer_tag (customer_id bigint, "index" bigint, value varchar, _fivetran_synced timestamp);

create or replace table shopify."order" (
    id bigint, name varchar, email varchar, phone varchar, customer_id bigint, created_at timestamp,
    processed_at timestamp, updated_at timestamp, cancelled_at timestamp, cancel_reason varchar,
    financial_status varchar, fulfillment_status varchar, currency varchar, total_price double,
    subtotal_price double, total_discounts double, total_tax double, total_line_items_price double,
    source_name varchar, test boolean, browser_ip varchar, checkout_token varchar, cart_token varchar,
    buyer_accepts_marketing boolean, billing_address_address_1 varchar, billing_address_city varchar,
    billing_address_zip varchar, billing_address_country_code varchar, billing_address_phone varchar,
    shipping_address_address_1 varchar, shipping_address_city varchar, shipping_address_zip varchar,
    shipping_address_country_code varchar, shipping_address_phone varchar,
    _fivetran_synced timestamp, _fivetran_deleted boolean
);

create or replace table shopify.order_line (
    id bigint, order_id bigint, "index" bigint, product_id bigint, variant_id bigint, sku varchar, title varchar,
    vendor varchar, quantity bigint, price double, total_discount double, _fivetran_synced timestamp
);

create or replace table shopify.order_discount_code (
    order_id bigint, "index" bigint, code varchar, amount double, type varchar, _fivetran_synced timestamp
);

create or replace table shopify.discount_allocation (
    order_line_id bigint, "index" bigint, amount double, discount_application_index bigint, _fivetran_synced timestamp
);

create or replace table shopify.refund (
    id bigint, order_id bigint, created_at timestamp, processed_at timestamp, note varchar, restock boolean,
    user_id bigint, _fivetran_synced timestamp
);

create or replace table shopify.order_line_refund (
    id bigint, refund_id bigint, order_line_id bigint, quantity bigint, subtotal double, total_tax double,
    restock_type varchar, _fivetran_synced timestamp
);

create or replace table shopify."transaction" (
    id bigint, order_id bigint, refund_id bigint, amount double, kind varchar, status varchar, gateway varchar,
    currency varchar, created_at timestamp, processed_at timestamp, payment_credit_card_bin varchar,
    payment_credit_card_number varchar, payment_credit_card_company varchar, test boolean, _fivetran_synced timestamp
);

create or replace table shopify.abandoned_checkout (
    id bigint, token varchar, cart_token varchar, email varchar, phone varchar, customer_id bigint,
    created_at timestamp, updated_at timestamp, completed_at timestamp, closed_at timestamp,
    abandoned_checkout_url varchar, total_price double, subtotal_price double, total_discounts double,
    currency varchar, buyer_accepts_marketing boolean, shipping_address_address_1 varchar,
    shipping_address_zip varchar, shipping_address_country_code varchar,
    _fivetran_synced timestamp, _fivetran_deleted boolean
);

create or replace table shopify.abandoned_checkout_discount_code (
    checkout_id bigint, "index" bigint, code varchar, amount double, type varchar, created_at timestamp,
    _fivetran_synced timestamp
);

create or replace table shopify.shop (
    id bigint, name varchar, domain varchar, email varchar, currency varchar, iana_timezone varchar,
    created_at timestamp, _fivetran_synced timestamp, _fivetran_deleted boolean
);

create or replace table shopify.product (
    id bigint, title varchar, handle varchar, product_type varchar, vendor varchar, status varchar,
    created_at timestamp, updated_at timestamp, _fivetran_synced timestamp, _fivetran_deleted boolean
);

create or replace table segment.tracks (
    id varchar, anonymous_id varchar, user_id varchar, event varchar, event_text varchar, "timestamp" timestamp,
    received_at timestamp, sent_at timestamp, context_page_url varchar, order_id varchar, checkout_id varchar,
    coupon varchar, revenue double, product_id varchar, category varchar, uuid_ts timestamp
);

create or replace table segment.identifies (
    id varchar, anonymous_id varchar, user_id varchar, email varchar, phone varchar, "timestamp" timestamp,
    received_at timestamp, uuid_ts timestamp
);

create or replace table salesforce.contact (
    id varchar, email varchar, phone varchar, mobile_phone varchar, first_name varchar, last_name varchar,
    account_id varchar, has_opted_out_of_email boolean, is_deleted boolean, created_date timestamp,
    last_modified_date timestamp, _fivetran_synced timestamp, _fivetran_deleted boolean
);
