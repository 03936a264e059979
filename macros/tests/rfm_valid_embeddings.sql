{#-
    rfm_valid_embeddings: every embedding is present, has `dim` entries (default: the width
    most rows have) and holds only finite numbers. Fails with one row per bad embedding.
-#}
{% test rfm_valid_embeddings(model, column_name='embedding', dim=none) %}
    {{ return(adapter.dispatch('test_rfm_valid_embeddings', 'dbt_rfm')(model, column_name, dim)) }}
{% endtest %}

{#- duckdb: lambda syntax is DuckDB's; other warehouses need their own variant -#}
{% macro default__test_rfm_valid_embeddings(model, column_name, dim) %}
with embeddings as (
    select
        entity_id, anchor_time, target_name,
        len({{ column_name }}) as width,
        list_bool_and(list_transform({{ column_name }}, lambda x: isfinite(x))) as all_finite
    from {{ model }}
),

declared as (
    {%- if dim is not none %}
    select {{ dim }} as width
    {%- else %}
    select mode(width) as width from embeddings
    {%- endif %}
)

select e.*
from embeddings as e
cross join declared as d
where e.width is null or e.width != d.width or not coalesce(e.all_finite, false)
{% endmacro %}
