{#-
    Cells (rfm_runtime.schema.CELLS) of every sampled node in rfm_subgraph: values joined from
    the graph models and unpivoted by dbt_rfm.subgraph_cells, ordered by anchor, hop, table,
    row key and column position (the cells of one anchor are contiguous).
    A view: cells are ~10x the subgraph's rows (the demo's 456k anchors make ~90M cells), so
    consumers stream the anchors they need from it instead of storing all of them.
-#}
{{ config(materialized='view') }}
-- depends_on: {{ ref('rfm_graph_spec') }}
{%- set subgraph = ref('rfm_subgraph') %}
{%- set g = dbt_rfm.rfm_graph() if execute else none %}
{%- if g is none or g.tables | length == 0 %}
-- empty graph (or parsing): a typed empty table
select
    cast(null as {{ dbt.type_string() }}) as entity_id,
    cast(null as {{ dbt.type_timestamp() }}) as anchor_time,
    cast(null as {{ dbt.type_string() }}) as table_name,
    cast(null as {{ dbt.type_string() }}) as row_key,
    cast(null as {{ dbt.type_string() }}) as parent_table,
    cast(null as {{ dbt.type_string() }}) as parent_key,
    cast(null as integer) as hop,
    cast(null as {{ dbt.type_string() }}) as column_name,
    cast(null as {{ dbt.type_string() }}) as stype,
    cast(null as double) as num_value,
    cast(null as {{ dbt.type_string() }}) as text_value,
    cast(null as double) as rel_days
where 1 = 0
{%- else %}
{{ dbt_rfm.subgraph_cells(g, subgraph) }}
{%- endif %}
