{#- Current segment membership, one row per (customer_key, segment) for every segment in the catalog
    (macro segment_catalog), with the destination names. Presence = member. Promotional segments never
    contain suppressed or held-out people (customer_segments already excludes them). -#}

with customer_segments as (
    select * from {{ ref('customer_segments') }}
    where {{ in_scope('customer_key') }}
),

definitions as (
    select * from {{ ref('segment_definitions') }}
),

members as (
    {%- for entry in segment_catalog() %}
    select
        customer_key,
        '{{ entry.segment }}' as segment
    from customer_segments
    where {{ entry.condition }}
    {% if not loop.last %}
    union all
    {% endif %}
    {%- endfor %}
),

final as (
    select
        members.customer_key,
        members.segment,
        definitions.segment_category,
        definitions.customerio_segment,
        definitions.cordial_list,
        definitions.talon_one_audience
    from members
    inner join definitions
        on members.segment = definitions.segment
)

select * from final
