{#- Private: at execute time, fail unless the calling model depends on every graph model.
    dbt fixes a model's dependencies while parsing, when `graph` is not available, so the graph
    models reach rfm_graph_spec through the `dbt_rfm:graph_models` var; this check makes a
    missing entry an error instead of a race with the model it reads. -#}
{% macro _rfm_check_graph_dependencies(spec) %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set upstream = [] -%}
    {%- for uid in model.depends_on.nodes -%}{%- do upstream.append(graph.nodes[uid].name) -%}{%- endfor -%}
    {%- set missing = spec.tables.keys() | reject('in', upstream) | sort -%}
    {%- if missing -%}
        {{ exceptions.raise_compiler_error("model '" ~ model.name ~ "' must run after the rfm graph models but does not depend on: " ~ missing | join(', ') ~ "; list every graph model in dbt_project.yml, vars: {'dbt_rfm:graph_models': [" ~ spec.tables.keys() | sort | join(', ') ~ "]}") }}
    {%- endif -%}
{% endmacro %}
