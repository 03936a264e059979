{#-
    The rfm graph as rows: one per (graph table, column, link membership), with the columns of
    dbt_rfm.spec.SPEC_ROW_COLUMNS, so GraphSpec.from_rows(these rows) is the graph. Package
    models that need the graph at run time ref this model, which makes them run after the
    graph models (listed in the `dbt_rfm:graph_models` var; see docs/graph.md).
-#}
{{ config(materialized='table') }}
{%- for graph_model in var('dbt_rfm:graph_models', []) %}
-- depends_on: {{ ref(graph_model) }}
{%- endfor %}
{%- set spec = dbt_rfm.rfm_graph() %}
{{- dbt_rfm._rfm_check_graph_dependencies(spec) }}
{{ dbt_rfm._rfm_graph_spec_select(spec) }}
