{#-
  The body of a per-target package model (rfm_labels and the history models): the union over
  `targets` of `target_sql(target, ref('rfm_anchors'), g)` (a macro, such as
  dbt_rfm.rfm_label_sql), or, when there is none, the caller's block (a typed empty select).
-#}
{% macro _rfm_per_target(target_sql, targets, g) %}
  {%- if targets | length == 0 %}
{{ caller() }}
  {%- else %}
    {%- for t in targets %}
select * from (
{{ target_sql(t, ref('rfm_anchors'), g) }}
) as target_{{ loop.index }}
{% if not loop.last %}union all{% endif %}
    {%- endfor %}
  {%- endif %}
{% endmacro %}
