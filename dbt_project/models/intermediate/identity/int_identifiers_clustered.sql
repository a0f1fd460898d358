{{ config(scope_delete=[['identifier', 'identifier']]) }}

{#- Connected components of the identity graph, in SQL: label propagation with hooking and pointer
    jumping, unrolled var identity_max_iterations times. Every linkable identifier starts labelled with
    its own number. Each round, every identifier finds the smallest label among itself and its neighbours
    (the one join over the edges); the identifiers sharing a label take the smallest any of them found, and
    so does the identifier that label names (the whole group hooks onto its smallest neighbouring group);
    then each jumps to its new label's new label. Whole groups merge and chains halve, so the rounds needed
    grow with the logarithm of a component's size, whatever its shape or numbering. (Propagation with
    jumping alone needs rounds in proportion to a component's length for some numberings: one component
    of a large shop outlasted the default.) The singular test assert_identity_converged fails if the rounds
    were not enough (some link still joins two labels).
    component_id is the component's smallest identifier, a name only: the stable person key is assigned
    in int_identifiers_assigned. Scoped runs cluster the components in scope (macros/scope/). -#}

{%- set iterations = var('identity_max_iterations', 6) | int -%}

with guarded as (
    select * from {{ ref('int_identifiers_guarded') }}
    where is_linkable
        and {{ in_scope('identifier', 'identifier') }}
),

links as (
    select * from {{ ref('int_identity_links_filtered') }}
    where {{ in_scope('from_identifier', 'identifier') }}
),

nodes as (
    select
        identifier,
        identifier_type,
        identifier_value,
        first_seen_at,
        identifier_rank,
        can_anchor_key,
        row_number() over (order by identifier) as node_id
    from guarded
),

-- Both directions of every link, plus each node's link to itself.
neighbours as (
    select
        from_nodes.node_id,
        to_nodes.node_id as neighbour_id
    from links
    inner join nodes as from_nodes
        on links.from_identifier = from_nodes.identifier
    inner join nodes as to_nodes
        on links.to_identifier = to_nodes.identifier

    union all

    select
        to_nodes.node_id,
        from_nodes.node_id as neighbour_id
    from links
    inner join nodes as from_nodes
        on links.from_identifier = from_nodes.identifier
    inner join nodes as to_nodes
        on links.to_identifier = to_nodes.identifier

    union all

    select
        node_id,
        node_id as neighbour_id
    from nodes
),

labels_0 as (
    select
        node_id,
        node_id as label
    from nodes
),

{%- for i in range(1, iterations + 1) %}

-- Per label, the smallest label found among the identifiers carrying it and their neighbours: what the
-- group hooks onto.
hooked_{{ i }} as (
    select
        own.label,
        min(neighbour.label) as hooked_label
    from neighbours
    inner join labels_{{ i - 1 }} as own
        on neighbours.node_id = own.node_id
    inner join labels_{{ i - 1 }} as neighbour
        on neighbours.neighbour_id = neighbour.node_id
    group by own.label
),

-- Each identifier takes what its label's group found, or, when it is itself a label, what its own group
-- found, whichever is smaller.
lowered_{{ i }} as (
    select
        previous.node_id,
        least(hooked.hooked_label, coalesce(own.hooked_label, hooked.hooked_label)) as label
    from labels_{{ i - 1 }} as previous
    inner join hooked_{{ i }} as hooked
        on previous.label = hooked.label
    left join hooked_{{ i }} as own
        on previous.node_id = own.label
),

-- Pointer jumping: then to its new label's new label.
labels_{{ i }} as (
    select
        lowered.node_id,
        least(lowered.label, jumped.label) as label
    from lowered_{{ i }} as lowered
    inner join lowered_{{ i }} as jumped
        on lowered.label = jumped.node_id
),
{%- endfor %}

final as (
    select
        nodes.identifier,
        nodes.identifier_type,
        nodes.identifier_value,
        nodes.first_seen_at,
        nodes.identifier_rank,
        nodes.can_anchor_key,
        -- Named by its smallest identifier: unique across runs, so a scoped run's components never
        -- collide with the ones it leaves alone.
        min(nodes.identifier) over (partition by labels.label) as component_id
    from nodes
    inner join labels_{{ iterations }} as labels
        on nodes.node_id = labels.node_id
)

select * from final
