{{ config(scope_delete=[['identifier', 'identifier']]) }}

{#- Connected components of the identity graph, in SQL: label propagation with pointer jumping,
    unrolled var identity_max_iterations times (each round is one join over the edges and one
    self-join of the labels). Every linkable identifier starts labelled with its own number; each round
    it takes the smallest label among itself and its neighbours, then jumps to its label's label,
    which roughly halves the remaining distance on many shapes; on some numberings of a chain it only
    moves the label one step, so rounds grow with a component's length. Star-shaped records keep
    components short, so a handful of rounds suffice. (Hooking whole label groups converges in fewer
    rounds, but its extra joins held several times the memory and failed at scale.) The singular test
    assert_identity_converged fails if the rounds were not enough (some link still joins two labels).
    component_id is the component's smallest identifier, a name only: the stable person key is assigned
    in int_identifiers_assigned. Scoped runs cluster the components in scope (macros/scope/). -#}

{%- set iterations = var('identity_max_iterations', 8) | int -%}

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

propagated_{{ i }} as (
    select
        neighbours.node_id,
        min(previous.label) as label
    from neighbours
    inner join labels_{{ i - 1 }} as previous
        on neighbours.neighbour_id = previous.node_id
    group by neighbours.node_id
),

labels_{{ i }} as (
    select
        propagated.node_id,
        case when jumped.label < propagated.label then jumped.label else propagated.label end as label
    from propagated_{{ i }} as propagated
    inner join propagated_{{ i }} as jumped
        on propagated.label = jumped.node_id
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
