{{ config(tags=['gate'], meta={'dagster': {'ref': {'name': 'int_identifiers_clustered'}}}) }}
-- Gate: blocks every sync on both paths (orchestration/schedules.py). It reads several models, so it names
-- the asset it is a check of: dagster-dbt runs only the tests it can attach to an asset.
-- Label propagation ran enough rounds (var identity_max_iterations): every link of the identity graph
-- joins two identifiers with the same component label. Fails listing the links that still cross
-- components; raise the var if it does.
-- A scoped run relabels only the components in scope, and a link with neither end in them is as the last
-- run that checked it left it: only links touching the scope are checked then (the daily job checks all).
with links as (
    select * from {{ ref('int_identity_links_filtered') }}
    where {{ in_scope('from_identifier', 'identifier') }} or {{ in_scope('to_identifier', 'identifier') }}
),

clustered as (
    select * from {{ ref('int_identifiers_clustered') }}
)

select
    links.from_identifier,
    links.to_identifier,
    from_nodes.component_id as from_component_id,
    to_nodes.component_id as to_component_id
from links
inner join clustered as from_nodes
    on links.from_identifier = from_nodes.identifier
inner join clustered as to_nodes
    on links.to_identifier = to_nodes.identifier
where from_nodes.component_id != to_nodes.component_id
