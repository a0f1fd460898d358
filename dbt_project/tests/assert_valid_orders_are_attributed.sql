{{ config(severity='warn') }}
-- Data health (warning): valid orders that belong to no person, i.e. guest orders whose only contact
-- details are placeholders or missing. A few are expected; a jump means a mapping regression.
select
    order_id,
    email,
    created_at
from {{ ref('int_orders_attributed') }}
where is_valid
    and customer_key is null
