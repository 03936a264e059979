{#- Anchors of every declared target: (target_name, entity_id, anchor_time, role). -#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('rfm_graph_spec') }}
{%- set g = dbt_rfm.rfm_graph() if execute else none %}
{%- set targets = dbt_rfm.rfm_targets(g) if execute else [] %}
{%- if targets | length == 0 %}
-- no target declared (meta.rfm.targets): a typed empty table
select
    cast(null as {{ dbt.type_string() }}) as target_name,
    cast(null as {{ dbt.type_string() }}) as entity_id,
    cast(null as {{ dbt.type_timestamp() }}) as anchor_time,
    cast(null as {{ dbt.type_string() }}) as role
where 1 = 0
{%- else %}
{%- for t in targets %}
select * from (
{{ dbt_rfm.rfm_anchor_sql(t, g) }}
) as anchors_{{ t.name }}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{%- endif %}
