{{ config(scope_delete=[['event_id', 'changed:segment_track']]) }}

{#- A table, not a view: a scoped run (macros/scope/) re-stages only the keys the loaders changed
    (every raw version of them, so deduplication picks what a full rebuild would), and the models
    downstream read the stored rows of the rest instead of re-deduplicating the whole raw table. -#}
-- depends_on: {{ ref('int_scope_changed_records') }}

{#- Read in each branch below (a CTE read twice would be materialized whole first). #}
{%- set landed = '(' ~ relay_source('segment', 'tracks') ~ ') as landed' %}

with source as (
    select * from {{ landed }}
    {%- if is_incremental() and relay_scoped() %}
    -- Scoped: every delivery of an event the loaders changed. Cleaning each of millions of landed ids
    -- costs more than the rest of this model, so ids clean as landed are matched as they are and only
    -- those clean_text would change (a byte order mark, or spaces around it: DuckDB's trim strips
    -- spaces) are cleaned first. The two sets are disjoint: a changed id is clean.
    where {{ in_changed('cast(id as ' ~ dbt.type_string() ~ ')', 'segment_track') }}

    union all

    select * from {{ landed }}
    where (
            contains(cast(id as {{ dbt.type_string() }}), chr(65279))
            or starts_with(cast(id as {{ dbt.type_string() }}), ' ')
            or ends_with(cast(id as {{ dbt.type_string() }}), ' ')
        )
        and {{ in_changed(clean_text('id'), 'segment_track') }}
    {%- endif %}
),

cleaned as (
    select
        {{ clean_text('id') }} as event_id,
        {{ clean_text('anonymous_id') }} as anonymous_id,
        {{ clean_text('user_id') }} as user_id,
        {{ clean_text('event') }} as event_name,
        {{ clean_timestamp('timestamp') }} as occurred_at,
        {{ clean_timestamp('received_at') }} as received_at,
        {{ clean_text('context_page_url') }} as page_url,
        {{ clean_text('order_id') }} as order_id,
        {{ clean_text('checkout_id') }} as checkout_token,
        upper({{ clean_text('coupon') }}) as coupon,
        cast({{ clean_double('revenue') }} as {{ dbt.type_numeric() }}) as revenue,
        {{ clean_text('product_id') }} as product_id,
        {{ clean_text('category') }} as category
    from source
),

-- Segment delivers at least once: the same message id can land twice.
deduplicated as (
    select
        *,
        row_number() over (partition by event_id order by received_at, occurred_at) as delivery_rank
    from cleaned
)

select
    event_id,
    anonymous_id,
    user_id,
    event_name,
    occurred_at,
    received_at,
    page_url,
    order_id,
    checkout_token,
    coupon,
    revenue,
    product_id,
    category
from deduplicated
where delivery_rank = 1
