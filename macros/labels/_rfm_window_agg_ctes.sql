{#-
  CTEs `<prefix>_rows`, `<prefix>_windowed`, `<prefix>_aggregated` computing a normalised
  aggregate (see _rfm_normalize_aggregate) for every (entity_id, anchor_time) of the CTE
  `anchors`: rows of the linked model with time in (anchor_time + start, anchor_time + end].
  `<prefix>_aggregated` has one row per distinct anchor: (entity_id, anchor_time, value).
  Python twin: dbt_rfm.labels.label_sql (same steps).
-#}
{% macro _rfm_window_agg_ctes(prefix, anchors, agg, where) %}
  {%- set value = 'null' if agg.column == '*' else 'c."' ~ agg.column ~ '"' -%}
  {%- if agg.fn == 'LIST_DISTINCT' -%}{%- set value = 'cast(' ~ value ~ ' as ' ~ dbt.type_string() ~ ')' -%}{%- endif -%}
{{ dbt_rfm._rfm_agg_rows_cte(prefix, agg, value, where, true, '') }},
{{ prefix }}_windowed as (
    select a.entity_id, a.anchor_time, c.row_time, c.value
    from (select distinct entity_id, anchor_time from {{ anchors }}) as a
    join {{ prefix }}_rows as c on c.entity_id = a.entity_id
    {%- if agg.start is not none %}
        and c.row_time > {{ dbt_rfm._rfm_add('a.anchor_time', agg.start, agg.unit) }}
    {%- endif %}
        and c.row_time <= {{ dbt_rfm._rfm_add('a.anchor_time', agg.end, agg.unit) }}
),
{{ prefix }}_aggregated as (
    select a.entity_id, a.anchor_time, {{ dbt_rfm._rfm_agg_expr(agg.fn) }} as value
    from (select distinct entity_id, anchor_time from {{ anchors }}) as a
    left join {{ prefix }}_windowed as w on w.entity_id = a.entity_id and w.anchor_time = a.anchor_time
    group by a.entity_id, a.anchor_time
)
{%- endmacro %}

{#-
  CTE `<prefix>_rows` (entity_id, row_time, value[, extra]): the rows of the aggregate's model
  that link to an entity and have a non-null column, passing the aggregate's `where` when
  `filtered`; `extra` is more of the select list (or '').
-#}
{% macro _rfm_agg_rows_cte(prefix, agg, value, where, filtered, extra) %}
  {%- set filters = [] -%}
  {%- for c in agg.link_columns -%}{%- do filters.append('c."' ~ c ~ '" is not null') -%}{%- endfor -%}
  {%- if agg.column != '*' -%}{%- do filters.append('c."' ~ agg.column ~ '" is not null') -%}{%- endif -%}
  {%- if filtered and agg.where is not none -%}
    {%- do filters.append(dbt_rfm._rfm_condition_sql(agg.where, 'c', where) | trim) -%}
  {%- endif -%}
{{ prefix }}_rows as (
  {%- if agg.via is none %}
    select {{ dbt_rfm._rfm_key_sql(agg.link_columns, 'c') }} as entity_id,
  {%- else %}
    -- two hops: {{ agg.table }} -> {{ agg.via.table }} -> entity; the middle model holds the key
    select {{ dbt_rfm._rfm_key_sql(agg.via.key_columns, 'v') }} as entity_id,
  {%- endif %}
        cast(c."{{ agg.time_column }}" as {{ dbt.type_timestamp() }}) as row_time, {{ value }} as value{{ extra }}
    from {{ agg.relation }} as c
  {%- if agg.via is not none %}
    join {{ agg.via.relation }} as v on {% for cc in agg.via.child_columns %}v."{{ agg.via.parent_columns[loop.index0] }}" = c."{{ cc }}"{% if not loop.last %} and {% endif %}{% endfor %}
  {%- endif %}
    where {{ filters | join(' and ') }}
    {%- if agg.via is not none %}{% for kc in agg.via.key_columns %} and v."{{ kc }}" is not null{% endfor %}{% endif %}
)
{%- endmacro %}

{#- The aggregate over `w.value` / `w.row_time`; empty COUNT / SUM give 0, the rest null. -#}
{% macro _rfm_agg_expr(fn) %}
  {{ return(adapter.dispatch('_rfm_agg_expr', 'dbt_rfm')(fn)) }}
{% endmacro %}

{#- DuckDB: ordered aggregates (first(x order by t)) and list aggregates (array_agg, list_sort). -#}
{% macro default___rfm_agg_expr(fn) %}
  {%- set exprs = {
      'COUNT': 'count(w.row_time)',
      'EXISTS': 'count(w.row_time)',
      'SUM': 'coalesce(sum(w.value), 0)',
      'AVG': 'avg(w.value)',
      'MIN': 'min(w.value)',
      'MAX': 'max(w.value)',
      'COUNT_DISTINCT': 'count(distinct w.value)',
      'FIRST': 'first(w.value order by w.row_time, w.value)',
      'LAST': 'first(w.value order by w.row_time desc, w.value desc)',
      'LIST_DISTINCT': 'list_sort(array_agg(distinct w.value) filter (where w.value is not null))',
  } -%}
  {{- exprs[fn] -}}
{% endmacro %}
