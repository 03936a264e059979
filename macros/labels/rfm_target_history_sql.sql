{#-
  dbt_rfm.rfm_target_history_sql(target, anchors_relation, g): the history of one regression
  target over COUNT or SUM, or binary target over EXISTS, COUNT or SUM, for all its anchors in
  `anchors_relation` (rfm_anchors), as SQL selecting (target_name, entity_id, anchor_time,
  per_window_1, per_window_4, per_window_13).

  Per anchor: the target's own aggregate (with its `where`; the count of its rows for EXISTS)
  over the last 1, 4 and 13 label windows (window = end - start, in the target's unit),
  divided by the number of windows. A row counts when its time is at or before anchor_time
  and every column the aggregate reads is known strictly before it (meta.rfm.available_at,
  as the samplers rule). Python twin:
  dbt_rfm.labels.target_history_sql; the regression and binary readouts read it (docs/model.md).
-#}
{% macro rfm_target_history_sql(target, anchors_relation, g) %}
  {{ return(adapter.dispatch('rfm_target_history_sql', 'dbt_rfm')(target, anchors_relation, g)) }}
{% endmacro %}

{% macro default__rfm_target_history_sql(target, anchors_relation, g) %}
  {%- set agg = target.aggregate -%}
  {%- set where = "target '" ~ target.name ~ "'" -%}
  {%- set n = [(agg.end - agg.start) if agg.start is not none else agg.end, 1] | max -%}
  {#- the availability columns of what the aggregate reads (its column and its where's) -#}
  {%- set read = [] if agg.column == '*' else [agg.column] -%}
  {%- if agg.where is not none -%}{%- do read.extend(dbt_rfm._rfm_condition_columns(agg.where)) -%}{%- endif -%}
  {%- set gates = [] -%}
  {%- for c in g.tables[agg.table].columns if c.name in read and c.available_at and c.available_at not in gates -%}
    {%- do gates.append(c.available_at) -%}
  {%- endfor -%}
  {%- set value = 'cast(c."' ~ agg.column ~ '" as double)' if agg.fn == 'SUM' else '1' -%}
  {%- set extra = '' -%}
  {%- if gates -%}
    {#- the latest availability time of the row's values; null (never known) when one is null -#}
    {%- set nulls = [] -%}{%- set known = [] -%}
    {%- for gc in gates -%}{%- do nulls.append('c."' ~ gc ~ '" is null') -%}{%- do known.append('c."' ~ gc ~ '"') -%}{%- endfor -%}
    {%- set extra = ', case when ' ~ (nulls | join(' or ')) ~ ' then null else greatest(' ~ (known | join(', ')) ~ ') end as gate_time' -%}
  {%- endif -%}
with anchors as (
    select distinct entity_id, anchor_time
    from {{ anchors_relation }}
    where target_name = '{{ target.name }}'
),
{{ dbt_rfm._rfm_agg_rows_cte('history', agg, value, where, true, extra) }},
windowed as (
    select a.entity_id, a.anchor_time,
    {%- for k in [1, 4, 13] %}
        coalesce(sum(case when c.row_time > {{ dbt_rfm._rfm_add('a.anchor_time', -k * n, agg.unit) }} then c.value end), 0) / {{ k }}.0 as per_window_{{ k }}{% if not loop.last %},{% endif %}
    {%- endfor %}
    from anchors as a
    left join history_rows as c on c.entity_id = a.entity_id
        and c.row_time <= a.anchor_time
        and c.row_time > {{ dbt_rfm._rfm_add('a.anchor_time', -13 * n, agg.unit) }}
    {%- if gates %}
        and c.gate_time < a.anchor_time
    {%- endif %}
    group by a.entity_id, a.anchor_time
)
select
    cast('{{ target.name }}' as {{ dbt.type_string() }}) as target_name,
    entity_id, anchor_time,
    cast(per_window_1 as double) as per_window_1,
    cast(per_window_4 as double) as per_window_4,
    cast(per_window_13 as double) as per_window_13
from windowed
{%- endmacro %}
