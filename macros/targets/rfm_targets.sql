{#-
  dbt_rfm.rfm_targets(): every target declared under a model's `config.meta.rfm.targets`, as
  normalised dicts (see _rfm_normalize_target), sorted by name. Empty at parse time.
  Python twin: dbt_rfm.targets.targets_from_manifest (full validation).
-#}
{% macro rfm_targets(g=none) %}
  {{ return(adapter.dispatch('rfm_targets', 'dbt_rfm')(g)) }}
{% endmacro %}

{% macro default__rfm_targets(g) %}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {%- set g = g if g is not none else dbt_rfm.rfm_graph() -%}
  {%- set out = [] -%}
  {%- set seen = {} -%}
  {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
    {%- set rfm = (node.config.get('meta') or {}).get('rfm') or (node.meta or {}).get('rfm') or {} -%}
    {%- set raw_targets = rfm.get('targets') or [] -%}
    {%- if raw_targets is mapping or raw_targets is string -%}
      {{ exceptions.raise_compiler_error("dbt-rfm: model '" ~ node.name ~ "': meta.rfm.targets must be a list of targets") }}
    {%- endif -%}
    {%- for raw in raw_targets -%}
      {%- set t = dbt_rfm._rfm_normalize_target(raw, node.name, g) -%}
      {%- if t.name in seen -%}
        {{ exceptions.raise_compiler_error("dbt-rfm: target '" ~ t.name ~ "' is declared twice (models '" ~ seen[t.name] ~ "' and '" ~ node.name ~ "')") }}
      {%- endif -%}
      {%- do seen.update({t.name: node.name}) -%}
      {%- do out.append(t) -%}
    {%- endfor -%}
  {%- endfor -%}
  {{ return(out | sort(attribute='name')) }}
{% endmacro %}
