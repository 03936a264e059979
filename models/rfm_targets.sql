{#- One row per declared target (meta.rfm.targets), for the scoring models and SQL consumers. -#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('rfm_graph_spec') }}
{%- set targets = dbt_rfm.rfm_targets() if execute else [] %}
{%- for t in targets %}
select
    {{ dbt.string_literal(t.name) }} as target_name,
    {{ dbt.string_literal(t.entity) }} as entity,
    {{ dbt.string_literal(t.kind) }} as kind,
    {{ dbt.string_literal(t.task) }} as task,
    {{ dbt.string_literal(t.static) if t.static else 'cast(null as ' ~ dbt.type_string() ~ ')' }} as target_column,
    cast({{ t.top_k if t.top_k is not none else 'null' }} as integer) as top_k,
    {{ dbt.string_literal(tojson(t) | replace("'", "''")) }} as definition
{% if not loop.last %}union all{% endif %}
{%- else %}
-- no target declared (meta.rfm.targets): a typed empty table
select
    cast(null as {{ dbt.type_string() }}) as target_name,
    cast(null as {{ dbt.type_string() }}) as entity,
    cast(null as {{ dbt.type_string() }}) as kind,
    cast(null as {{ dbt.type_string() }}) as task,
    cast(null as {{ dbt.type_string() }}) as target_column,
    cast(null as integer) as top_k,
    cast(null as {{ dbt.type_string() }}) as definition
where 1 = 0
{%- endfor %}
