{#- Private helpers shared by the anchor and label macros. -#}

{#- A row key as text: cast(col as varchar); composite keys joined with '|' (rfm_runtime.schema). -#}
{% macro _rfm_key_sql(columns, alias) %}
  {%- if columns | length == 1 -%}
    cast({{ alias }}."{{ columns[0] }}" as {{ dbt.type_string() }})
  {%- else -%}
    concat_ws('|', {% for c in columns %}cast({{ alias }}."{{ c }}" as {{ dbt.type_string() }}){% if not loop.last %}, {% endif %}{% endfor %})
  {%- endif -%}
{% endmacro %}

{#- `expr + n unit` for a PQL unit (days, weeks, ...), through dbt's cross-database dateadd. -#}
{% macro _rfm_add(expr, n, unit) %}
  {%- set part = {'seconds': 'second', 'minutes': 'minute', 'hours': 'hour', 'days': 'day',
                  'weeks': 'week', 'months': 'month'}.get(unit) -%}
  {%- if part is none -%}
    {{ exceptions.raise_compiler_error("dbt-rfm: unknown time unit '" ~ unit ~ "'; expected seconds, minutes, hours, days, weeks or months") }}
  {%- endif -%}
  {{ dbt.dateadd(part, n, expr) | trim }}
{% endmacro %}

{#-
  The scoring time: var('dbt_rfm:scoring_time') when set, else the latest row time over every
  graph table with a time column. A scalar SQL expression.
-#}
{% macro _rfm_scoring_time_sql(g) %}
  {%- set fixed = var('dbt_rfm:scoring_time', none) -%}
  {%- if fixed is not none -%}
    cast('{{ fixed }}' as {{ dbt.type_timestamp() }})
  {%- else -%}
    {%- set parts = [] -%}
    {%- for t in g.tables.values() | sort(attribute='name') if t.time_column is not none -%}
      {%- do parts.append('select max(cast("' ~ t.time_column ~ '" as ' ~ dbt.type_timestamp() ~ ')) as t from ' ~ t.relation) -%}
    {%- endfor -%}
    {%- if not parts -%}
      {{ exceptions.raise_compiler_error("dbt-rfm: no graph model has a time column; set var 'dbt_rfm:scoring_time'") }}
    {%- endif -%}
    (select max(t) from ({{ parts | join(' union all ') }}) as row_times)
  {%- endif -%}
{% endmacro %}

{#- Rows `anchor_time` from start towards end (inclusive) by `step unit` (a negative step walks
    back); selected from one row. -#}
{% macro _rfm_time_spine(start, end, step, unit) %}
  {{ return(adapter.dispatch('_rfm_time_spine', 'dbt_rfm')(start, end, step, unit)) }}
{% endmacro %}

{#- DuckDB: generate_series over timestamps returns a list; unnest it into rows. -#}
{% macro default___rfm_time_spine(start, end, step, unit) %}
  {%- set part = {'seconds': 'second', 'minutes': 'minute', 'hours': 'hour', 'days': 'day',
                  'weeks': 'week', 'months': 'month'}[unit] -%}
  unnest(generate_series(cast({{ start }} as timestamp), cast({{ end }} as timestamp), interval ({{ step }}) {{ part }}))
{% endmacro %}
