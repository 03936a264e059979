{#- Private: the primary key of a declared table, [] when none; the twin of
    dbt_rfm.graph_rules._primary_key. Precedence: meta.rfm.primary_key, a model-level
    primary_key constraint, column-level primary_key constraints, the one column with both a
    unique and a not_null test. -#}
{% macro _rfm_primary_key(t, columns) %}
    {%- if t.meta.primary_key is not none -%}
        {%- set declared, named_by = t.meta.primary_key, 'meta.rfm.primary_key' -%}
    {%- elif t.model_key -%}
        {%- set declared, named_by = t.model_key, 'a primary_key constraint' -%}
    {%- elif t.column_key -%}
        {%- set declared, named_by = t.column_key, 'a primary_key constraint' -%}
    {%- else -%}
        {%- set tested = [] -%}
        {%- for c, tests in t.tested.items() if tests | length == 2 -%}{%- do tested.append(c) -%}{%- endfor -%}
        {%- if tested | length > 1 -%}
            {{ exceptions.raise_compiler_error("model '" ~ t.name ~ "': unique + not_null tests on several columns (" ~ tested | sort | join(', ') ~ "); name the primary key with meta.rfm.primary_key") }}
        {%- endif -%}
        {%- set declared, named_by = tested, 'unique + not_null tests' -%}
    {%- endif -%}
    {%- set out = [] -%}
    {%- for c in declared -%}{%- do out.append(dbt_rfm._rfm_resolve_column(columns, c, named_by)) -%}{%- endfor -%}
    {{ return(out) }}
{% endmacro %}
