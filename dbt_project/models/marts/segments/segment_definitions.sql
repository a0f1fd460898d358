{#- The segment catalog: one row per segment model (meta.segment, read by macros/segments/segments.sql),
    with what it means and what each destination calls it. Built from the dbt graph: a new segment model
    appears here with no other edit, and a wrong meta.segment fails this model naming the file. -#}

{%- set segments = relay_segments() %}

with catalog as (
    {%- for segment in segments %}
    select
        {{ segment_literal(segment.name) }} as segment,
        {{ segment_literal(segment.category) }} as segment_category,
        {{ segment_literal(segment.description) }} as description,
        {{ segment_literal(segment.schedule) }} as schedule,
        {{ segment_literal(segment.window_text) }} as time_window,
        {{ segment_literal(segment.ttl_text) }} as ttl,
        {{ segment_literal(segment.relation) }} as relation,
        {%- for destination, column in segment_destinations().items() %}
        {{ segment_literal(segment.destinations.get(destination)) }} as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    union all
    {%- endfor %}
    select
        {%- for column in ['segment', 'segment_category', 'description', 'schedule', 'time_window', 'ttl', 'relation']
            + segment_destinations().values() | list %}
        cast(null as {{ dbt.type_string() }}) as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    where 1 = 0
),

final as (
    select * from catalog
)

select * from final
