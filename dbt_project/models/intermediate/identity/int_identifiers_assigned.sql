{{
    config(
        materialized='incremental',
        unique_key='identifier',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        full_refresh=false
    )
}}

{#- The memory of identity: identifier -> customer_key, kept across runs so keys are stable.

    Rules (evaluated per connected component of this run, "earliest" = first_seen_at, then
    identifier_rank, then identifier):
      * A key is minted once, from one identifier: its anchor (issued_key on the anchor's row).
        A component with no anchor mints md5(<its earliest identifier that can anchor a key>), so a
        full refresh on the same data mints the same keys as the incremental history (as long as data
        lands in time order; a backfill with older timestamps keeps the incremental keys).
      * A component keeps the key of its earliest anchor. More history, new identifiers and links
        inside a person never change it.
      * When a link joins components that each had a key, the earliest anchor's key survives and the
        others are retired (their anchors keep issued_key; see the identity_merges mart). If the link
        later disappears, the retired anchor's component gets its old key back.
      * If every record of an anchor is deleted, its key moves to the earliest remaining identifier
        that carried it, so deleting one record does not re-key a person.
    Incremental runs write only new rows and rows whose key changed; scoped runs (macros/scope/) look
    only at the components in scope. Protected from --full-refresh: the memory cannot be recomputed. -#}

with clustered as (
    select * from {{ ref('int_identifiers_clustered') }}
    where {{ in_scope('identifier', 'identifier') }}
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
),

previous as (
    {%- if is_incremental() %}
    select
        identifier,
        identifier_type,
        customer_key,
        issued_key,
        first_assigned_at,
        key_changed_at
    from {{ this }}
    where {{ in_scope('identifier', 'identifier') }}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as identifier,
        cast(null as {{ dbt.type_string() }}) as identifier_type,
        cast(null as {{ dbt.type_string() }}) as customer_key,
        cast(null as {{ dbt.type_string() }}) as issued_key,
        cast(null as {{ dbt.type_timestamp() }}) as first_assigned_at,
        cast(null as {{ dbt.type_timestamp() }}) as key_changed_at
    where 1 = 0
    {%- endif %}
),

nodes as (
    select
        clustered.identifier,
        clustered.identifier_type,
        clustered.first_seen_at,
        clustered.identifier_rank,
        clustered.can_anchor_key,
        clustered.component_id,
        previous.customer_key as previous_customer_key,
        previous.issued_key as previous_issued_key,
        previous.first_assigned_at as previous_first_assigned_at,
        previous.key_changed_at as previous_key_changed_at
    from clustered
    left join previous
        on clustered.identifier = previous.identifier
),

live_keys as (
    select distinct previous_issued_key as issued_key
    from nodes
    where previous_issued_key is not null
),

-- Keys still carried by identifiers in the graph whose anchor has left it.
orphan_heirs as (
    select
        nodes.identifier,
        nodes.previous_customer_key as transferred_key,
        row_number() over (
            partition by nodes.previous_customer_key
            order by nodes.first_seen_at, nodes.identifier_rank, nodes.identifier
        ) as heir_rank
    from nodes
    left join live_keys
        on nodes.previous_customer_key = live_keys.issued_key
    where nodes.previous_customer_key is not null
        and live_keys.issued_key is null
        and nodes.previous_issued_key is null
        and nodes.can_anchor_key
),

transferred as (
    select
        identifier,
        transferred_key
    from orphan_heirs
    where heir_rank = 1
),

anchors as (
    select
        nodes.identifier,
        nodes.component_id,
        coalesce(nodes.previous_issued_key, transferred.transferred_key) as issued_key,
        row_number() over (
            partition by nodes.component_id
            order by nodes.first_seen_at, nodes.identifier_rank, nodes.identifier
        ) as anchor_rank
    from nodes
    left join transferred
        on nodes.identifier = transferred.identifier
    where coalesce(nodes.previous_issued_key, transferred.transferred_key) is not null
),

surviving_keys as (
    select
        component_id,
        issued_key as customer_key
    from anchors
    where anchor_rank = 1
),

mint_candidates as (
    select
        nodes.identifier,
        nodes.component_id,
        row_number() over (
            partition by nodes.component_id
            order by nodes.first_seen_at, nodes.identifier_rank, nodes.identifier
        ) as candidate_rank
    from nodes
    left join surviving_keys
        on nodes.component_id = surviving_keys.component_id
    where surviving_keys.component_id is null
        and nodes.can_anchor_key
),

minted_keys as (
    select
        identifier,
        component_id,
        {{ dbt.hash('identifier') }} as customer_key
    from mint_candidates
    where candidate_rank = 1
),

component_keys as (
    select
        component_id,
        customer_key
    from surviving_keys

    union all

    select
        component_id,
        customer_key
    from minted_keys
),

assigned as (
    select
        nodes.identifier,
        nodes.identifier_type,
        component_keys.customer_key,
        coalesce(nodes.previous_issued_key, transferred.transferred_key, minted_keys.customer_key) as issued_key,
        coalesce(nodes.previous_first_assigned_at, as_of.as_of) as first_assigned_at,
        case
            when nodes.previous_customer_key = component_keys.customer_key then nodes.previous_key_changed_at
            else as_of.as_of
        end as key_changed_at,
        nodes.previous_customer_key,
        nodes.previous_issued_key
    from nodes
    -- Components made only of anonymous ids have no key: they are not (yet) a person.
    left join component_keys
        on nodes.component_id = component_keys.component_id
    left join transferred
        on nodes.identifier = transferred.identifier
    left join minted_keys
        on nodes.identifier = minted_keys.identifier
    cross join as_of
),

-- A departed anchor whose key moved to an heir gives it up, so a key never has two anchors.
released as (
    select
        previous.identifier,
        previous.identifier_type,
        previous.customer_key,
        cast(null as {{ dbt.type_string() }}) as issued_key,
        previous.first_assigned_at,
        previous.key_changed_at
    from previous
    inner join transferred
        on previous.issued_key = transferred.transferred_key
    left join clustered
        on previous.identifier = clustered.identifier
    where clustered.identifier is null
),

final as (
    select
        identifier,
        identifier_type,
        customer_key,
        issued_key,
        first_assigned_at,
        key_changed_at
    from assigned
    where coalesce(customer_key, '') != coalesce(previous_customer_key, '')
        or coalesce(issued_key, '') != coalesce(previous_issued_key, '')

    union all

    select
        identifier,
        identifier_type,
        customer_key,
        issued_key,
        first_assigned_at,
        key_changed_at
    from released
)

select * from final
