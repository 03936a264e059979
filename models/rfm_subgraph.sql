{#-
    Sampled temporal subgraphs (rfm_runtime.schema.SUBGRAPH) of every distinct anchor
    (entity_id, anchor_time) of every declared target, one dbt_rfm.sample_subgraph statement per
    entity model, unioned. Anchors shared by several targets of one entity are sampled once;
    target_name stays in rfm_anchors. Caps: vars dbt_rfm:hops and dbt_rfm:fanouts.
-#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('rfm_graph_spec') }}
{%- set anchors = ref('rfm_anchors') %}
{%- set g = dbt_rfm.rfm_graph() if execute else none %}
{%- set targets = dbt_rfm.rfm_targets(g) if execute else [] %}
{%- set entities = targets | map(attribute='entity') | unique | sort | list %}
{%- if entities | length == 0 %}
-- no target declared (meta.rfm.targets): a typed empty table
select
    cast(null as {{ dbt.type_string() }}) as entity_id,
    cast(null as {{ dbt.type_timestamp() }}) as anchor_time,
    cast(null as {{ dbt.type_string() }}) as table_name,
    cast(null as {{ dbt.type_string() }}) as row_key,
    cast(null as integer) as hop,
    cast(null as {{ dbt.type_string() }}) as parent_table,
    cast(null as {{ dbt.type_string() }}) as parent_key
where 1 = 0
{%- else %}
{%- for entity in entities %}
{%- set names = targets | selectattr('entity', 'equalto', entity) | map(attribute='name') | list %}
select * from (
{{ dbt_rfm.sample_subgraph(
    g,
    entity,
    "(select entity_id, anchor_time from " ~ anchors ~ " where target_name in ('"
        ~ names | join("', '") ~ "'))"
) }}
) as subgraph_{{ entity }}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{%- endif %}
