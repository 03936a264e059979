{#- History of every regression target over COUNT or SUM and binary target over EXISTS, COUNT or
    SUM: what their readouts read (dbt_rfm.labels.has_target_history). -#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('rfm_graph_spec') }}
{%- set g = dbt_rfm.rfm_graph() if execute else none %}
{%- set targets = [] %}
{%- set fns = {'regression': ['COUNT', 'SUM'], 'binary': ['EXISTS', 'COUNT', 'SUM']} %}
{%- for t in (dbt_rfm.rfm_targets(g) if execute else []) if t.aggregate and t.aggregate.fn in fns.get(t.task, []) %}
  {%- do targets.append(t) %}
{%- endfor %}
{%- call dbt_rfm._rfm_per_target(dbt_rfm.rfm_target_history_sql, targets, g) %}
-- no target with a history: a typed empty table
select
    cast(null as {{ dbt.type_string() }}) as target_name,
    cast(null as {{ dbt.type_string() }}) as entity_id,
    cast(null as {{ dbt.type_timestamp() }}) as anchor_time,
    cast(null as double) as per_window_1,
    cast(null as double) as per_window_4,
    cast(null as double) as per_window_13
where 1 = 0
{%- endcall %}
-- depends_on: {{ ref('rfm_anchors') }}
