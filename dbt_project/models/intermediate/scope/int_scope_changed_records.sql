{#- Records the loaders wrote (new, updated or deleted) since the previous run, with the identifiers
    they carried before this run: the seed of the scope. Children count for their order (discount
    codes, refunds, line refunds, transactions). New Segment events are listed as segment_track records
    (events_attributed picks them up; they carry no identity). Empty in a run that is not scoped.
    A lookback (var relay_scope_lookback_minutes) re-reads a little before the previous high-water
    mark, for loaders whose write times arrive slightly out of order. -#}

{%- set previous = relay_previous_run() %}
{#- Not scoped: a null bound selects nothing (the query still names every source, so dbt sees them). #}
{%- set since = "cast('" ~ previous.loaded_through ~ "' as " ~ dbt.type_timestamp() ~ ") - interval '" ~ var('relay_scope_lookback_minutes', 15) ~ " minutes'" if previous else "cast(null as " ~ dbt.type_timestamp() ~ ")" %}



with changes as (
    {{ scope_changed_ids(since, 'shopify', 'customer', 'cast(' ~ clean_bigint('id') ~ ' as varchar)', 'shopify_customer') }}
    union all
    {{ scope_changed_ids(since, 'shopify', 'order', 'cast(' ~ clean_bigint('id') ~ ' as varchar)', 'shopify_order') }}
    union all
    {{ scope_changed_ids(since, 'shopify', 'order_discount_code', 'cast(' ~ clean_bigint('order_id') ~ ' as varchar)', 'shopify_order') }}
    union all
    {{ scope_changed_ids(since, 'shopify', 'refund', 'cast(' ~ clean_bigint('order_id') ~ ' as varchar)', 'shopify_order') }}
    union all
    {{ scope_changed_ids(since, 'shopify', 'transaction', 'cast(' ~ clean_bigint('order_id') ~ ' as varchar)', 'shopify_order') }}
    union all
    select
        'shopify_order' as record_type,
        cast({{ clean_bigint('refunds.order_id') }} as varchar) as record_id
    from ({{ relay_source('shopify', 'order_line_refund') }}) as line_refunds
    -- Raw refunds (every version): a line refund's order, without staging (this model reads raw only).
    inner join ({{ relay_source('shopify', 'refund') }}) as refunds
        on {{ clean_bigint('line_refunds.refund_id') }} = {{ clean_bigint('refunds.id') }}
    where {{ clean_timestamp('line_refunds._fivetran_synced') }} > {{ since }}
    union all
    {{ scope_changed_ids(since, 'shopify', 'abandoned_checkout', 'cast(' ~ clean_bigint('id') ~ ' as varchar)', 'shopify_checkout') }}
    union all
    {{ scope_changed_ids(since, 'segment', 'identifies', clean_text('id'), 'segment_identify', 'received_at') }}
    union all
    {{ scope_changed_ids(since, 'segment', 'tracks', clean_text('id'), 'segment_track', 'received_at') }}
    union all
    {{ scope_changed_ids(since, 'salesforce', 'contact', clean_text('id'), 'salesforce_contact') }}
),

records as (
    select distinct
        record_type,
        record_id,
        record_type || ':' || record_id as record
    from changes
    where record_id is not null
)

select
    records.record_type,
    records.record_id,
    records.record,
    {%- if previous %}
    previous_observed.identifier as previous_identifier
    {%- else %}
    cast(null as {{ dbt.type_string() }}) as previous_identifier
    {%- endif %}
from records
{%- if previous %}
left join {{ scope_relation('int_identifiers_observed') }} as previous_observed
    on records.record_type = previous_observed.record_type
    and records.record_id = previous_observed.record_id
{%- endif %}
