{#-
  `dbt run-operation dbt_rfm.rfm_where`: print where the rfm tables are and how many rows each
  holds, so a person (or a scheduler log) can find the predictions after `dbt build`.
-#}
{% macro rfm_where() %}
  {%- set names = ['rfm_predictions', 'rfm_embeddings', 'rfm_evaluation', 'rfm_labels',
                   'rfm_anchors', 'rfm_graph_spec'] -%}
  {%- set found = [] -%}
  {%- for node in graph.nodes.values()
        if node.resource_type == 'model' and node.package_name == 'dbt_rfm'
        and node.name in names -%}
    {%- set rel = adapter.get_relation(node.database, node.schema, node.alias) -%}
    {%- if rel is not none -%}
      {%- set n = run_query('select count(*) from ' ~ rel).columns[0].values()[0] -%}
      {%- do found.append((names.index(node.name), node.name, rel, n)) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if found | length == 0 -%}
    {{ log('dbt-rfm: no rfm tables built yet; run `dbt build` first', info=true) }}
  {%- endif -%}
  {%- for _, name, rel, n in found | sort -%}
    {{ log('dbt-rfm: ' ~ name ~ ' -> ' ~ rel ~ ' (' ~ n ~ ' rows)', info=true) }}
  {%- endfor -%}
{% endmacro %}
