{{
    config(
        materialized='incremental',
        unique_key='membership_spell_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        full_refresh=false
    )
}}

{#- Who entered and left which segment, when: one row per membership spell (a continuous stretch of
    membership). entered_at / exited_at are the as-of times of the runs that first saw the person in /
    out of the segment (so they follow the data clock, not the wall clock); exited_at is null while the
    spell is open. Incremental and protected from --full-refresh: history cannot be recomputed. -#}

with memberships as (
    select * from {{ ref('segment_memberships') }}
    where {{ in_scope('customer_key') }}
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
),

open_spells as (
    {%- if is_incremental() %}
    select * from {{ this }}
    where exited_at is null
        and {{ in_scope('customer_key') }}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as membership_spell_id,
        cast(null as {{ dbt.type_string() }}) as customer_key,
        cast(null as {{ dbt.type_string() }}) as segment,
        cast(null as {{ dbt.type_timestamp() }}) as entered_at,
        cast(null as {{ dbt.type_timestamp() }}) as exited_at
    where 1 = 0
    {%- endif %}
),

entered as (
    select
        {{ dbt.hash("memberships.customer_key || '|' || memberships.segment || '|' || cast(as_of.as_of as " ~ dbt.type_string() ~ ")") }} as membership_spell_id,
        memberships.customer_key,
        memberships.segment,
        as_of.as_of as entered_at,
        cast(null as {{ dbt.type_timestamp() }}) as exited_at
    from memberships
    cross join as_of
    left join open_spells
        on memberships.customer_key = open_spells.customer_key
        and memberships.segment = open_spells.segment
    where open_spells.membership_spell_id is null
),

exited as (
    select
        open_spells.membership_spell_id,
        open_spells.customer_key,
        open_spells.segment,
        open_spells.entered_at,
        as_of.as_of as exited_at
    from open_spells
    cross join as_of
    left join memberships
        on open_spells.customer_key = memberships.customer_key
        and open_spells.segment = memberships.segment
    where memberships.customer_key is null
),

final as (
    select * from entered
    union all
    select * from exited
)

select * from final
