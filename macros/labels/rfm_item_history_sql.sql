{#-
  dbt_rfm.rfm_item_history_sql(target, anchors_relation, g): the item history of one ranking
  (LIST_DISTINCT) target for all its anchors in `anchors_relation` (rfm_anchors), as SQL
  selecting (target_name, entity_id, anchor_time, item, n_window_1, n_window_4, n_window_13,
  n_all, windows_since_last).

  Per anchor and item: the rows of the aggregated model linking the entity to the item with a
  row time at or before anchor_time (never later), counted over the last 1, 4 and 13 label
  windows (window = end - start, in the target's unit) and over all time, and the time since
  the latest, in label windows. The target's `where` is not applied: a filter column may be
  known only after the row's time (meta.rfm.available_at). Python twin:
  dbt_rfm.labels.item_history_sql; the ranking readout reads it (docs/model.md).
-#}
{% macro rfm_item_history_sql(target, anchors_relation, g) %}
  {{ return(adapter.dispatch('rfm_item_history_sql', 'dbt_rfm')(target, anchors_relation, g)) }}
{% endmacro %}

{% macro default__rfm_item_history_sql(target, anchors_relation, g) %}
  {%- set agg = target.aggregate -%}
  {%- set where = "target '" ~ target.name ~ "'" -%}
  {%- set n = [(agg.end - agg.start) if agg.start is not none else agg.end, 1] | max -%}
  {%- set seconds = {'seconds': 1, 'minutes': 60, 'hours': 3600, 'days': 86400, 'weeks': 604800,
                     'months': 2629746}[agg.unit] -%}
  {%- set value = 'cast(c."' ~ agg.column ~ '" as ' ~ dbt.type_string() ~ ')' -%}
with anchors as (
    select distinct entity_id, anchor_time
    from {{ anchors_relation }}
    where target_name = '{{ target.name }}'
),
{{ dbt_rfm._rfm_agg_rows_cte('history', agg, value, where, false, '') }},
counted as (
    select a.entity_id, a.anchor_time, c.value as item,
    {%- for k in [1, 4, 13] %}
        cast(sum(case when c.row_time > {{ dbt_rfm._rfm_add('a.anchor_time', -k * n, agg.unit) }} then 1 else 0 end) as bigint) as n_window_{{ k }},
    {%- endfor %}
        cast(count(*) as bigint) as n_all,
        max(c.row_time) as last_time
    from anchors as a
    join history_rows as c on c.entity_id = a.entity_id and c.row_time <= a.anchor_time
    group by a.entity_id, a.anchor_time, c.value
)
select
    cast('{{ target.name }}' as {{ dbt.type_string() }}) as target_name,
    entity_id, anchor_time, item, n_window_1, n_window_4, n_window_13, n_all,
    cast(datediff('second', last_time, anchor_time) as double) / {{ n * seconds }}.0 as windows_since_last
from counted
{%- endmacro %}
