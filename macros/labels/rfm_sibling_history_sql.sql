{#-
  dbt_rfm.rfm_sibling_history_sql(target, anchors_relation, g): the sibling history of one
  static binary target for all its anchors in `anchors_relation` (rfm_anchors), as SQL selecting
  (target_name, entity_id, anchor_time, link, window_length, n_known, label_sum, n_pending).

  Siblings of an anchor's row: the other rows of the entity model that share a parent with it
  through one of its foreign keys (`link`: the key's columns, comma-separated), with a row time
  in (anchor_time - window_length, anchor_time] (target.history: windows and unit). Per link and
  window: how many siblings' labels were known strictly before anchor_time (the static column's
  meta.rfm.available_at; at its row time when it has none) and not null, the sum of those labels,
  and how many siblings were not known yet. Python twin: dbt_rfm.labels.sibling_history_sql; the
  binary readout reads it (decision 0008, docs/model.md).
-#}
{% macro rfm_sibling_history_sql(target, anchors_relation, g) %}
  {{ return(adapter.dispatch('rfm_sibling_history_sql', 'dbt_rfm')(target, anchors_relation, g)) }}
{% endmacro %}

{% macro default__rfm_sibling_history_sql(target, anchors_relation, g) %}
  {%- set where = "target '" ~ target.name ~ "'" -%}
  {%- set ent = g.tables[target.entity] -%}
  {%- set windows = target.history.windows -%}
  {%- set unit = target.history.unit -%}
  {%- set links = [] -%}
  {%- for lk in g.links if lk.child == ent.name and lk.child_columns not in links -%}
    {%- do links.append(lk.child_columns) -%}
  {%- endfor -%}
  {%- set columns = [] -%}
  {%- for cols in links -%}{%- for c in cols if c not in columns -%}{%- do columns.append(c) -%}{%- endfor -%}{%- endfor -%}
  {%- set gates = [] -%}
  {%- for c in ent.columns if c.name == target.static and c.available_at -%}{%- do gates.append(c.available_at) -%}{%- endfor -%}
  {%- set gate = gates[0] if gates else none -%}
  {%- set value = 'e."' ~ target.static ~ '"' -%}
with anchors as (
    select distinct entity_id, anchor_time
    from {{ anchors_relation }}
    where target_name = '{{ target.name }}'
),
entity_rows as (
    select {{ dbt_rfm._rfm_key_sql(ent.primary_key, 'e') }} as entity_id,
        cast(e."{{ ent.time_column }}" as {{ dbt.type_timestamp() }}) as row_time,
        {%- for c in columns %}
        e."{{ c }}",
        {%- endfor %}
        case when {{ value }} is null then null
            when {{ dbt_rfm._rfm_compare_sql(value, target.cast.op, target.cast.get('value'), where) }} then 1.0
            else 0.0 end as value,
        cast(e."{{ gate or ent.time_column }}" as {{ dbt.type_timestamp() }}) as known_at
    from {{ ent.relation }} as e
    where {% for c in ent.primary_key %}e."{{ c }}" is not null and {% endfor %}e."{{ ent.time_column }}" is not null
),
anchor_rows as (
    select a.entity_id, a.anchor_time{% for c in columns %}, r."{{ c }}"{% endfor %}
    from anchors as a
    join entity_rows as r on r.entity_id = a.entity_id
)
{%- for cols in links %},
link_{{ loop.index }} as (
    select a.entity_id, a.anchor_time
    {%- for k in windows %}
      {%- set inside = 's.row_time > ' ~ dbt_rfm._rfm_add('a.anchor_time', -k, unit) %}
      {%- set known = 's.known_at ' ~ ('<' if gate else '<=') ~ ' a.anchor_time' %},
        sum(case when {{ inside }} and {{ known }} and s.value is not null then 1 else 0 end) as n_known_{{ k }},
        sum(case when {{ inside }} and {{ known }} then coalesce(s.value, 0) else 0 end) as label_sum_{{ k }},
        sum(case when {{ inside }} then (case when {{ known }} then 0 else 1 end) else 0 end) as n_pending_{{ k }}
    {%- endfor %}
    from anchor_rows as a
    left join entity_rows as s on {% for c in cols %}s."{{ c }}" = a."{{ c }}" and {% endfor %}s.entity_id <> a.entity_id
        and s.row_time <= a.anchor_time
        and s.row_time > {{ dbt_rfm._rfm_add('a.anchor_time', -(windows | max), unit) }}
    group by a.entity_id, a.anchor_time
)
{%- endfor %}
{%- for cols in links %}
  {%- set i = loop.index %}
  {%- for k in windows %}
select
    cast('{{ target.name }}' as {{ dbt.type_string() }}) as target_name,
    entity_id, anchor_time,
    cast('{{ cols | join(",") }}' as {{ dbt.type_string() }}) as link,
    cast({{ k }} as bigint) as window_length,
    cast(n_known_{{ k }} as bigint) as n_known,
    cast(label_sum_{{ k }} as double) as label_sum,
    cast(n_pending_{{ k }} as bigint) as n_pending
from link_{{ i }}
{% if not loop.last %}union all
{% endif %}
  {%- endfor %}
{% if not loop.last %}union all
{% endif %}
{%- endfor %}
{%- endmacro %}
