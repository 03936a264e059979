{#- Time-travel labels of the context anchors of every declared target. -#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('rfm_graph_spec') }}
{%- set g = dbt_rfm.rfm_graph() if execute else none %}
{%- set targets = dbt_rfm.rfm_targets(g) if execute else [] %}
{%- call dbt_rfm._rfm_per_target(dbt_rfm.rfm_label_sql, targets, g) %}
-- no target declared (meta.rfm.targets): a typed empty table
select
    cast(null as {{ dbt.type_string() }}) as target_name,
    cast(null as {{ dbt.type_string() }}) as entity_id,
    cast(null as {{ dbt.type_timestamp() }}) as anchor_time,
    cast(null as double) as label,
    cast(null as {{ dbt.type_string() }}) as label_class,
    cast(null as {{ dbt.type_string() }}[]) as label_items
where 1 = 0
{%- endcall %}
{#- the ref at parse time, so the DAG orders rfm_labels after rfm_anchors -#}
-- depends_on: {{ ref('rfm_anchors') }}
