{{ config(tags=['gate'], meta={'dagster': {'ref': {'name': 'int_identifiers_clustered'}}}) }}
-- Gate: blocks every sync on both paths (orchestration/schedules.py). It reads several models, so it names
-- the asset it is a check of: dagster-dbt runs only the tests it can attach to an asset.
-- Label propagation ran enough rounds (var identity_max_iterations): every link of the identity graph
-- joins two identifiers with the same component label. Fails listing the links that still cross
-- components; raise the var if it does.
with links as (
    select * from {{ ref('int_identity_links_filtered') }}
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
