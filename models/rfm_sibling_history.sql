{#- Sibling history of every static binary target: what the binary readout reads. -#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('rfm_graph_spec') }}
{%- set g = dbt_rfm.rfm_graph() if execute else none %}
{%- set targets = [] %}
{%- for t in (dbt_rfm.rfm_targets(g) if execute else []) if t.task == 'binary' and t.kind == 'static' and t.entity_time %}
  {%- if g.links | selectattr('child', 'equalto', t.entity) | list %}{%- do targets.append(t) %}{%- endif %}
{%- endfor %}
{%- call dbt_rfm._rfm_per_target(dbt_rfm.rfm_sibling_history_sql, targets, g) %}
-- no static binary target on a model with a time column and a foreign key: a typed empty table
select
    cast(null as {{ dbt.type_string() }}) as target_name,
    cast(null as {{ dbt.type_string() }}) as entity_id,
    cast(null as {{ dbt.type_timestamp() }}) as anchor_time,
    cast(null as {{ dbt.type_string() }}) as link,
    cast(null as bigint) as window_length,
    cast(null as {{ dbt.type_string() }}) as column_name,
    cast(null as bigint) as n_known,
    cast(null as double) as value_sum,
    cast(null as bigint) as n_pending
where 1 = 0
{%- endcall %}
-- depends_on: {{ ref('rfm_anchors') }}
