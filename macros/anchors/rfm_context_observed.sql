{#-
  rfm_context_observed: no context anchor of an aggregate target has a label window that ends
  after the scoring time (labels are fully observed; the time-travel rule of rfm_anchors).
  Fails with one row per offending (target_name, entity_id, anchor_time). Use on rfm_anchors.
-#}
{% test rfm_context_observed(model) %}
    {{ return(adapter.dispatch('test_rfm_context_observed', 'dbt_rfm')(model)) }}
{% endtest %}

{% macro default__test_rfm_context_observed(model) %}
{%- set g = dbt_rfm.rfm_graph() if execute else none -%}
{%- set targets = dbt_rfm.rfm_targets(g) if execute else [] -%}
with scoring as (
    select {{ dbt_rfm._rfm_scoring_time_sql(g) if targets else 'cast(null as ' ~ dbt.type_timestamp() ~ ')' }} as scoring_time
),
violations as (
{%- for t in targets if t.kind == 'aggregate' %}
    select m.target_name, m.entity_id, m.anchor_time
    from {{ model }} as m cross join scoring as s
    where m.target_name = '{{ t.name }}' and m.role = 'context'
        and {{ dbt_rfm._rfm_add('m.anchor_time', t.aggregate.end, t.aggregate.unit) }} > s.scoring_time
    union all
{%- endfor %}
    select target_name, entity_id, anchor_time from {{ model }} where 1 = 0
)
select * from violations
{% endmacro %}
