{#- The segment catalog (macro segment_catalog) as a table: what each synced segment means and what
    each destination calls it. -#}

with catalog as (
    {%- for entry in segment_catalog() %}
    select
        '{{ entry.segment }}' as segment,
        '{{ entry.category }}' as segment_category,
        '{{ entry.description | replace("'", "''") }}' as description,
        '{{ entry.condition | replace("'", "''") }}' as membership_condition,
        {{ "'" ~ entry.customerio ~ "'" if entry.customerio else 'cast(null as ' ~ dbt.type_string() ~ ')' }} as customerio_segment,
        {{ "'" ~ entry.cordial ~ "'" if entry.cordial else 'cast(null as ' ~ dbt.type_string() ~ ')' }} as cordial_list,
        {{ "'" ~ entry.talon_one ~ "'" if entry.talon_one else 'cast(null as ' ~ dbt.type_string() ~ ')' }} as talon_one_audience
    {% if not loop.last %}
    union all
    {% endif %}
    {%- endfor %}
),

final as (
    select * from catalog
)

select * from final
