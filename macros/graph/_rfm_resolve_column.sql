{#- Private: the warehouse name of column `name` of a model (exact, else case-insensitive), or a
    compiler error naming the model, the column and what named it; the twin of
    dbt_rfm.graph_rules._Columns.resolve. `columns` is {model, types: {name: data_type}}. -#}
{% macro _rfm_resolve_column(columns, name, named_by) %}
    {%- if name in columns.types -%}{{ return(name) }}{%- endif -%}
    {%- for c in columns.types if (c | lower) == ((name ~ '') | lower) -%}
        {{ return(c) }}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("model '" ~ columns.model ~ "', column '" ~ name ~ "': no such column in the warehouse (named by " ~ named_by ~ ")" ~ dbt_rfm._rfm_did_you_mean(name, columns.types.keys() | list)) }}
{% endmacro %}
