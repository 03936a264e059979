{#-
  dbt_rfm.rfm_sibling_history_sql(target, anchors_relation, g): the sibling history of one
  static binary target for all its anchors in `anchors_relation` (rfm_anchors), as SQL selecting
  (target_name, entity_id, anchor_time, link, window_length, column_name, n_known, value_sum,
  n_pending).

  Siblings of an anchor's row: the other rows of the entity model that share a parent with it
  through one of its foreign keys (`link`: the key's columns, comma-separated), with a row time
  in (anchor_time - window_length, anchor_time] (target.history: windows and unit). Per link and
  window, the label's row (column_name empty): how many siblings' labels were known strictly
  before anchor_time (the static column's meta.rfm.available_at; at its row time when it has
  none) and not null, the sum of those labels, and how many siblings were not known yet; then
  the same for each outcome column (number or boolean, with an availability time, not the
  static column): the siblings due in the longest window whose value became known in this one
  (strictly before anchor_time) and is not null, their values' sum, and the siblings due in
  the window whose value was not known yet (decision 0017). Python twin:
  dbt_rfm.labels.sibling_history_sql; the binary readout reads it (decisions 0008 and 0017).
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
  {#- (column_name, value, known_at, known strictly before the anchor): the label, then the
      outcomes (number and boolean columns with an availability time, not the target's own) -#}
  {%- set terms = [('',
      'case when ' ~ value ~ ' is null then null when ' ~ dbt_rfm._rfm_compare_sql(value, target.cast.op, target.cast.get('value'), where) ~ ' then 1.0 else 0.0 end',
      'e."' ~ (gate or ent.time_column) ~ '"', gate is not none)] -%}
  {%- for c in ent.columns if c.available_at and c.stype in ('numerical', 'boolean') and c.name != target.static -%}
    {%- set v = 'e."' ~ c.name ~ '"' -%}
    {%- set number = ('case when ' ~ v ~ ' is null then null when ' ~ v ~ ' then 1.0 else 0.0 end') if c.stype == 'boolean' else ('cast(' ~ v ~ ' as double)') -%}
    {%- do terms.append((c.name, number, 'e."' ~ c.available_at ~ '"', true)) -%}
  {%- endfor %}
with anchors as (
    select distinct entity_id, anchor_time
    from {{ anchors_relation }}
    where target_name = '{{ target.name }}'
),
entity_rows as (
    select {{ dbt_rfm._rfm_key_sql(ent.primary_key, 'e') }} as entity_id,
        {%- for c in columns %}
        e."{{ c }}",
        {%- endfor %}
        {%- for t in terms %}
        {{ t[1] }} as value_{{ loop.index0 }},
        cast({{ t[2] }} as {{ dbt.type_timestamp() }}) as known_at_{{ loop.index0 }},
        {%- endfor %}
        cast(e."{{ ent.time_column }}" as {{ dbt.type_timestamp() }}) as row_time
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
      {%- set start = dbt_rfm._rfm_add('a.anchor_time', -k, unit) %}
      {%- for t in terms %}
        {%- set j = loop.index0 %}
        {%- set known = 's.known_at_' ~ j ~ (' < ' if t[3] else ' <= ') ~ 'a.anchor_time' %}
        {#- the label's siblings are those due in the window; an outcome's, those due in the
            longest window whose value became known in this one (pending: due in it, not
            known yet) #}
        {%- set due = 's.row_time > ' ~ start %}
        {%- set inside = ('s.known_at_' ~ j ~ ' > ' ~ start) if j else due %},
        sum(case when {{ inside }} and {{ known }} and s.value_{{ j }} is not null then 1 else 0 end) as n_known_{{ k }}_{{ j }},
        sum(case when {{ inside }} and {{ known }} then coalesce(s.value_{{ j }}, 0) else 0 end) as value_sum_{{ k }}_{{ j }},
        sum(case when {{ due }} then (case when {{ known }} then 0 else 1 end) else 0 end) as n_pending_{{ k }}_{{ j }}
      {%- endfor %}
    {%- endfor %}
    {%- set lo = dbt_rfm._rfm_add('a.anchor_time', -(windows | max), unit) %}
    from anchor_rows as a
    left join entity_rows as s on {% for c in cols %}s."{{ c }}" = a."{{ c }}" and {% endfor %}s.entity_id <> a.entity_id
        and s.row_time <= a.anchor_time
        and s.row_time > {{ lo }}
    group by a.entity_id, a.anchor_time
)
{%- endfor %}
{%- for cols in links %}
  {%- set i = loop.index %}
  {%- set last_link = loop.last %}
  {%- for k in windows %}
    {%- set last_window = loop.last %}
    {%- for t in terms %}
select
    cast('{{ target.name }}' as {{ dbt.type_string() }}) as target_name,
    entity_id, anchor_time,
    cast('{{ cols | join(",") }}' as {{ dbt.type_string() }}) as link,
    cast({{ k }} as bigint) as window_length,
    cast('{{ t[0] }}' as {{ dbt.type_string() }}) as column_name,
    cast(n_known_{{ k }}_{{ loop.index0 }} as bigint) as n_known,
    cast(value_sum_{{ k }}_{{ loop.index0 }} as double) as value_sum,
    cast(n_pending_{{ k }}_{{ loop.index0 }} as bigint) as n_pending
from link_{{ i }}
{% if not (loop.last and last_window and last_link) %}union all
{% endif %}
    {%- endfor %}
  {%- endfor %}
{%- endfor %}
{%- endmacro %}
