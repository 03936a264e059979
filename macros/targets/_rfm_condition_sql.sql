{#-
  Render the YAML form of a condition ({column, op, value} | [..] | {all|any: [..]} | {not: ..})
  as a SQL boolean expression on `alias`; the twin of dbt_rfm.pql.render.condition_sql.
-#}
{% macro _rfm_condition_sql(cond, alias, where) %}
  {%- if cond is mapping and 'all' in cond -%}
    ({% for c in cond['all'] %}{{ dbt_rfm._rfm_condition_sql(c, alias, where) }}{% if not loop.last %} and {% endif %}{% endfor %})
  {%- elif cond is mapping and 'any' in cond -%}
    ({% for c in cond['any'] %}{{ dbt_rfm._rfm_condition_sql(c, alias, where) }}{% if not loop.last %} or {% endif %}{% endfor %})
  {%- elif cond is mapping and 'not' in cond -%}
    not ({{ dbt_rfm._rfm_condition_sql(cond['not'], alias, where) }})
  {%- elif cond is mapping -%}
    {%- do dbt_rfm._rfm_check_keys(cond, ['column', 'op', 'value'], where ~ ' condition') -%}
    {{ dbt_rfm._rfm_compare_sql(alias ~ '."' ~ cond['column'] ~ '"', cond['op'], cond.get('value'), where) }}
  {%- elif cond is iterable and cond is not string -%}
    ({% for c in cond %}{{ dbt_rfm._rfm_condition_sql(c, alias, where) }}{% if not loop.last %} and {% endif %}{% endfor %})
  {%- else -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ': expected a condition, found ' ~ cond) }}
  {%- endif -%}
{% endmacro %}

{#- `expr op value` with the operator normalised (is_null -> IS NULL, == -> =). -#}
{% macro _rfm_compare_sql(expr, op, value, where) %}
  {%- set ops = ['=', '!=', '<', '<=', '>', '>=', 'IN', 'NOT IN', 'IS NULL', 'IS NOT NULL', 'LIKE', 'NOT LIKE'] -%}
  {%- set canon = (op | string | upper | replace('_', ' ')).split() | join(' ') -%}
  {%- set canon = {'==': '=', '<>': '!='}.get(canon, canon) -%}
  {%- if canon not in ops -%}
    {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": unknown operator '" ~ op ~ "'; expected one of " ~ ops | join(', ')) }}
  {%- endif -%}
  {%- if canon in ('IS NULL', 'IS NOT NULL') -%}
    {{ expr }} {{ canon | lower }}
  {%- elif canon in ('IN', 'NOT IN') -%}
    {%- if value is string or value is not iterable or value | length == 0 -%}
      {{ exceptions.raise_compiler_error('dbt-rfm: ' ~ where ~ ": '" ~ canon ~ "' needs a non-empty list of values, found " ~ value) }}
    {%- endif -%}
    {{ expr }} {{ canon | lower }} ({% for v in value %}{{ dbt_rfm._rfm_literal(v) }}{% if not loop.last %}, {% endif %}{% endfor %})
  {%- else -%}
    {{ expr }} {{ canon | lower }} {{ dbt_rfm._rfm_literal(value) }}
  {%- endif -%}
{% endmacro %}

{% macro _rfm_literal(v) %}
  {%- if v is none -%}null
  {%- elif v is sameas true -%}true
  {%- elif v is sameas false -%}false
  {%- elif v is number -%}{{ v }}
  {%- else -%}'{{ v | string | replace("'", "''") }}'
  {%- endif -%}
{% endmacro %}

{#- Every column a condition (YAML form) reads, as a list; twin of dbt_rfm.pql.conditions.condition_columns. -#}
{% macro _rfm_condition_columns(cond) %}
  {%- set out = [] -%}
  {%- if cond is mapping and ('all' in cond or 'any' in cond) -%}
    {%- for c in cond.get('all', cond.get('any')) -%}{%- do out.extend(dbt_rfm._rfm_condition_columns(c)) -%}{%- endfor -%}
  {%- elif cond is mapping and 'not' in cond -%}
    {%- do out.extend(dbt_rfm._rfm_condition_columns(cond['not'])) -%}
  {%- elif cond is mapping -%}
    {%- do out.append(cond['column']) -%}
  {%- elif cond is iterable and cond is not string -%}
    {%- for c in cond -%}{%- do out.extend(dbt_rfm._rfm_condition_columns(c)) -%}{%- endfor -%}
  {%- endif -%}
  {{ return(out) }}
{% endmacro %}
