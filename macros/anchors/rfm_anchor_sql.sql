{#-
  dbt_rfm.rfm_anchor_sql(target, g): the anchors of one normalised target (see rfm_targets()) as
  SQL selecting (target_name, entity_id, anchor_time, role).

  Aggregate targets: context anchors are spine times x entities that exist then and pass the
  entity filter. The spine steps back from the scoring time to the spine start, so context
  anchors share the query anchors' phase (time of day; weekday for steps of whole weeks); a
  spine time is kept when its window ends by the scoring time (labels fully observed). Query
  anchors are the entities that exist and pass the entity filter at the scoring time.
  Static targets: every entity row is its own anchor at its row time; context = row time <=
  split - margin with a known value, query = row time > split (split defaults to the scoring
  time). An entity model with no time column: context = known value, query = unknown value,
  both at the scoring time. anchors.max_context caps the context anchors (stable hash pick).
-#}
{% macro rfm_anchor_sql(target, g) %}
  {{ return(adapter.dispatch('rfm_anchor_sql', 'dbt_rfm')(target, g)) }}
{% endmacro %}

{% macro default__rfm_anchor_sql(target, g) %}
  {%- set where = "target '" ~ target.name ~ "'" -%}
  {%- set ent = g.tables[target.entity] -%}
  {%- set ef = target.entity_filter or {} -%}
  {%- set anchors = target.anchors or {} -%}
  {%- set ts = dbt.type_timestamp() -%}
with scoring as (
    select {{ dbt_rfm._rfm_scoring_time_sql(g) }} as scoring_time
),
entities as (
    select {{ dbt_rfm._rfm_key_sql(ent.primary_key, 'e') }} as entity_id,
        {% if ent.time_column %}cast(e."{{ ent.time_column }}" as {{ ts }}){% else %}cast(null as {{ ts }}){% endif %} as entity_time
        {%- if target.kind == 'static' %},
        e."{{ target.static }}" as value{% endif %}
    from {{ ent.relation }} as e
    where {% for c in ent.primary_key %}e."{{ c }}" is not null{% if not loop.last %} and {% endif %}{% endfor %}
    {%- if ef.get('where') is not none %}
        and {{ dbt_rfm._rfm_condition_sql(ef['where'], 'e', where) }}
    {%- endif %}
),
{%- if target.kind == 'static' %}
  {%- set split = anchors.get('split') -%}
split as (
    select {% if split is not none %}cast('{{ split }}' as {{ ts }}){% else %}s.scoring_time{% endif %} as split_time,
        s.scoring_time
    from scoring as s
),
candidates as (
  {%- if ent.time_column %}
    select e.entity_id, e.entity_time as anchor_time, 'context' as role
    from entities as e cross join split as sp
    where e.value is not null
        and e.entity_time <= {{ dbt_rfm._rfm_add('sp.split_time', -(anchors.get('margin', 0)), anchors.get('margin_unit', 'days')) }}
    union all
    select e.entity_id, e.entity_time as anchor_time, 'query' as role
    from entities as e cross join split as sp
    where e.entity_time > sp.split_time
  {%- else %}
    select e.entity_id, sp.scoring_time as anchor_time,
        case when e.value is null then 'query' else 'context' end as role
    from entities as e cross join split as sp
  {%- endif %}
),
passing as (
    select * from candidates
)
{%- else %}
  {%- set agg = target.aggregate -%}
  {%- set spine = anchors.get('spine') or {} -%}
  {%- set step = spine.get('step') if spine.get('step') is not none else agg.end - agg.start -%}
  {%- set step_unit = (spine.get('unit') or 'days') if spine.get('step') is not none else agg.unit -%}
  {%- if spine.get('start') is not none -%}
    {%- set start_sql = "cast('" ~ spine['start'] ~ "' as " ~ ts ~ ")" -%}
  {%- else -%}
    {%- set start_sql = dbt.date_trunc('day', '(select min(cast("' ~ agg.time_column ~ '" as ' ~ ts ~ ')) from ' ~ agg.relation ~ ')') -%}
    {%- if ef.get('aggregate') is not none and ef.aggregate.start is not none -%}
      {%- set start_sql = dbt_rfm._rfm_add(start_sql, -ef.aggregate.start, ef.aggregate.unit) -%}
    {%- endif -%}
  {%- endif -%}
spine as (
    -- back from the scoring time by whole steps, so that every context anchor shares the query
    -- anchors' time of day (and weekday, for steps of whole weeks)
    select {{ dbt_rfm._rfm_time_spine('s.scoring_time', start_sql, -step, step_unit) }} as anchor_time
    from scoring as s
),
context_times as (
    -- labels fully observed: the window (anchor_time, anchor_time + end] ends by the scoring time
    select sp.anchor_time
    from spine as sp cross join scoring as s
    where {{ dbt_rfm._rfm_add('sp.anchor_time', agg.end, agg.unit) }} <= s.scoring_time
    {%- if spine.get('end') is not none %}
        and sp.anchor_time <= cast('{{ spine['end'] }}' as {{ ts }})
    {%- endif %}
),
candidates as (
    select e.entity_id, c.anchor_time, 'context' as role
    from entities as e cross join context_times as c
    {%- if ent.time_column %}
    where e.entity_time <= c.anchor_time
    {%- endif %}
    union all
    select e.entity_id, s.scoring_time as anchor_time, 'query' as role
    from entities as e cross join scoring as s
    {%- if ent.time_column %}
    where e.entity_time <= s.scoring_time
    {%- endif %}
),
  {%- if ef.get('aggregate') is not none %}
{{ dbt_rfm._rfm_window_agg_ctes('entity_filter', 'candidates', ef.aggregate, where ~ ' entity_filter') }},
passing as (
    select c.entity_id, c.anchor_time, c.role
    from candidates as c
    join entity_filter_aggregated as f on f.entity_id = c.entity_id and f.anchor_time = c.anchor_time
    where {% if ef.get('cast') is not none -%}
        {{ dbt_rfm._rfm_compare_sql('f.value', ef['cast'].op, ef['cast'].get('value'), where ~ ' entity_filter') }}
    {%- else -%}
        f.value > 0
    {%- endif %}
)
  {%- else %}
passing as (
    select * from candidates
)
  {%- endif %}
{%- endif %}
,
{#- default cap: var dbt_rfm:max_context (2000); set the var to none to keep every anchor -#}
{%- set max_context = anchors.get('max_context', var('dbt_rfm:max_context', 2000)) %}
capped as (
  {%- if max_context is not none %}
    -- at most {{ max_context }} context anchors, picked by a stable hash (anchors.max_context)
    select entity_id, anchor_time, role
    from (
        select p.*, row_number() over (
            partition by p.role
            order by {{ dbt.hash("p.entity_id || '|' || cast(p.anchor_time as " ~ dbt.type_string() ~ ")") }},
                p.entity_id, p.anchor_time
        ) as rfm_pick
        from passing as p
    ) as ranked
    where role = 'query' or rfm_pick <= {{ max_context }}
  {%- else %}
    select entity_id, anchor_time, role from passing
  {%- endif %}
)
select
    cast('{{ target.name }}' as {{ dbt.type_string() }}) as target_name,
    entity_id,
    cast(anchor_time as {{ ts }}) as anchor_time,
    cast(role as {{ dbt.type_string() }}) as role
from capped
{%- endmacro %}
