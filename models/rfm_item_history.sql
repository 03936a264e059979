{#- Item history of every ranking target (LIST_DISTINCT): what the ranking readout reads. -#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('rfm_graph_spec') }}
{%- set g = dbt_rfm.rfm_graph() if execute else none %}
{%- set targets = [] %}
{%- for t in (dbt_rfm.rfm_targets(g) if execute else []) if t.aggregate and t.aggregate.fn == 'LIST_DISTINCT' %}
  {%- do targets.append(t) %}
{%- endfor %}
{%- call dbt_rfm._rfm_per_target(dbt_rfm.rfm_item_history_sql, targets, g) %}
-- no ranking target with a LIST_DISTINCT aggregate: a typed empty table
select
    cast(null as {{ dbt.type_string() }}) as target_name,
    cast(null as {{ dbt.type_string() }}) as entity_id,
    cast(null as {{ dbt.type_timestamp() }}) as anchor_time,
    cast(null as {{ dbt.type_string() }}) as item,
    cast(null as bigint) as n_window_1,
    cast(null as bigint) as n_window_4,
    cast(null as bigint) as n_window_13,
    cast(null as bigint) as n_all,
    cast(null as double) as windows_since_last
where 1 = 0
{%- endcall %}
-- depends_on: {{ ref('rfm_anchors') }}
