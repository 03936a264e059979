{#-
  dbt_rfm.rfm_label_sql(target, anchors_relation, g): labels of one normalised target for the
  context anchors in `anchors_relation` (rfm_anchors), as SQL selecting (target_name,
  entity_id, anchor_time, label, label_class, label_items).

  Aggregate targets read linked rows with time in (anchor_time + start, anchor_time + end] and
  nothing later. COUNT / SUM / EXISTS / COUNT_DISTINCT give 0 for an empty window and keep the
  anchor; AVG / MIN / MAX / FIRST / LAST / LIST_DISTINCT drop it. binary: label 0/1;
  regression: label; multiclass: label_class; ranking: label_items (distinct link keys, sorted).
  Static targets read the entity row's own column. Python twin: dbt_rfm.labels.label_sql.
-#}
{% macro rfm_label_sql(target, anchors_relation, g) %}
  {{ return(adapter.dispatch('rfm_label_sql', 'dbt_rfm')(target, anchors_relation, g)) }}
{% endmacro %}

{% macro default__rfm_label_sql(target, anchors_relation, g) %}
  {%- set where = "target '" ~ target.name ~ "'" -%}
with anchors as (
    select entity_id, anchor_time
    from {{ anchors_relation }}
    where target_name = '{{ target.name }}' and role = 'context'
),
{%- if target.kind == 'static' %}
  {%- set ent = g.tables[target.entity] %}
aggregated as (
    select a.entity_id, a.anchor_time, e."{{ target.static }}" as value
    from anchors as a
    join {{ ent.relation }} as e on {{ dbt_rfm._rfm_key_sql(ent.primary_key, 'e') }} = a.entity_id
    where e."{{ target.static }}" is not null
),
{%- else %}
{{ dbt_rfm._rfm_window_agg_ctes('target', 'anchors', target.aggregate, where) }},
aggregated as (
    select * from target_aggregated
),
{%- endif %}
labelled as (
    select entity_id, anchor_time, {{ dbt_rfm._rfm_label_columns(target, 'value') }}
    from aggregated
    {%- set fn = target.aggregate.fn if target.aggregate else none %}
    {%- if fn == 'LIST_DISTINCT' %}
    where len(value) > 0
    {%- elif fn in ('AVG', 'MIN', 'MAX', 'FIRST', 'LAST') %}
    where value is not null
    {%- endif %}
)
select
    cast('{{ target.name }}' as {{ dbt.type_string() }}) as target_name,
    entity_id, anchor_time, label, label_class, label_items
from labelled
{%- endmacro %}

{#- label, label_class, label_items from the aggregated `value`, by task. -#}
{% macro _rfm_label_columns(target, value) %}
  {%- set label = 'cast(null as double)' -%}
  {%- set label_class = 'cast(null as ' ~ dbt.type_string() ~ ')' -%}
  {%- set items = 'cast(null as ' ~ dbt.type_string() ~ '[])' -%}
  {%- if target.cast is not none -%}
    {%- set label = 'case when ' ~ dbt_rfm._rfm_compare_sql(value, target.cast.op, target.cast.get('value'), "target '" ~ target.name ~ "' cast") | trim ~ ' then 1.0 else 0.0 end' -%}
  {%- elif target.aggregate and target.aggregate.fn == 'EXISTS' -%}
    {%- set label = 'case when ' ~ value ~ ' > 0 then 1.0 else 0.0 end' -%}
  {%- elif target.task == 'regression' -%}
    {%- set label = 'cast(' ~ value ~ ' as double)' -%}
  {%- elif target.task == 'multiclass' -%}
    {%- set label_class = 'cast(' ~ value ~ ' as ' ~ dbt.type_string() ~ ')' -%}
  {%- elif target.task == 'ranking' -%}
    {%- set items = value -%}
  {%- endif -%}
  {{- label }} as label, {{ label_class }} as label_class, {{ items }} as label_items
{%- endmacro %}
