{#-
  subgraph_cells(graph, subgraph_relation)

  SQL for the cells of a sampled subgraph (rfm_runtime.schema.CELLS): the values of every sampled
  node joined from its table and unpivoted, one UNION ALL branch per value column (columns of
  stype 'key' and availability times are not cells; null values stay, as null num_value and
  text_value). num_value:
  numerical as double, boolean as 0/1, timestamp as days relative to anchor_time; text_value:
  categorical and text cast to text; rel_days: row time - anchor_time in days, null for static
  tables. A column with an availability time (meta.rfm.available_at) has a cell only where that
  time is not null and < anchor_time. Ordered by entity_id, anchor_time, hop, table_name,
  row_key, column position. dbt_rfm.sampling.cells returns exactly the same rows.
-#}
{% macro subgraph_cells(graph, subgraph_relation) -%}
  {{ return(adapter.dispatch('subgraph_cells', 'dbt_rfm')(graph, subgraph_relation)) }}
{%- endmacro %}

{#- Portable SQL: a CTE per table joins values, a UNION ALL branch per column unpivots. -#}
{% macro default__subgraph_cells(graph, subgraph_relation) -%}
{%- set node_cols = "entity_id, anchor_time, table_name, row_key, parent_table, parent_key, hop" -%}
{%- set branches = [] -%}
with
subgraph as (
    select {{ node_cols }} from {{ subgraph_relation }} as rfm_subgraph_source
),
{%- for name, t in graph["tables"].items() | sort %}
{#- the sampled rows of {{ name }} with their values (value columns renamed c_<position>) #}
v_{{ name }} as (
    select
        s.entity_id, s.anchor_time, s.table_name, s.row_key, s.parent_table, s.parent_key, s.hop,
        {%- if t["time_column"] %}
        {{ dbt_rfm._rfm_sampling_days("s.anchor_time", "cast(r." ~ t["time_column"] ~ " as timestamp)") }} as rel_days
        {%- else %}
        cast(null as double) as rel_days
        {%- endif %}
        {%- set gates = t["columns"] | map(attribute="available_at") | select | list %}
        {%- for col in t["columns"] if col["stype"] != "key" %}
        {%- if col["name"] not in gates %}{% do branches.append((name, col, t["columns"].index(col))) %}{% endif %},
        r.{{ col["name"] }} as c_{{ t["columns"].index(col) }}
        {%- endfor %}
    from subgraph as s
    inner join {{ t["relation"] }} as r
        on {{ dbt_rfm._rfm_sampling_key_text(t["primary_key"], "r") }} = s.row_key
    where s.table_name = '{{ name }}'
),
{%- endfor %}
cells as (
{%- for name, col, pos in branches %}
    select {{ node_cols }},
        '{{ col["name"] }}' as column_name,
        '{{ col["stype"] }}' as stype,
        {{ dbt_rfm._rfm_sampling_cell_num(col, "c_" ~ pos, name) }} as num_value,
        {{ dbt_rfm._rfm_sampling_cell_text(col, "c_" ~ pos) }} as text_value,
        rel_days,
        {{ pos }} as column_position
    from v_{{ name }}
    {%- if col.get("available_at") %}
    {%- set at = graph["tables"][name]["columns"] | map(attribute="name") | list %}
    where cast(c_{{ at.index(col["available_at"]) }} as timestamp) < anchor_time
    {%- endif %}
    {%- if not loop.last %}
    union all
    {%- endif %}
{%- else %}
    select {{ node_cols }}, cast(null as varchar) as column_name, cast(null as varchar) as stype,
        cast(null as double) as num_value, cast(null as varchar) as text_value,
        cast(null as double) as rel_days, 0 as column_position
    from subgraph where 1 = 0
{%- endfor %}
)
select
    cast(entity_id as varchar) as entity_id,
    cast(anchor_time as timestamp) as anchor_time,
    cast(table_name as varchar) as table_name,
    cast(row_key as varchar) as row_key,
    cast(parent_table as varchar) as parent_table,
    cast(parent_key as varchar) as parent_key,
    cast(hop as integer) as hop,
    cast(column_name as varchar) as column_name,
    cast(stype as varchar) as stype,
    cast(num_value as double) as num_value,
    cast(text_value as varchar) as text_value,
    cast(rel_days as double) as rel_days
from cells
order by entity_id, anchor_time, hop, table_name, row_key, column_position
{%- endmacro %}

{#- num_value of one cell: numerical as double, boolean as 0/1, timestamp as days to anchor. -#}
{% macro _rfm_sampling_cell_num(col, expr, table_name) -%}
  {%- if col["stype"] == "numerical" -%}
    cast({{ expr }} as double)
  {%- elif col["stype"] == "boolean" -%}
    case when cast({{ expr }} as boolean) then cast(1 as double) when not cast({{ expr }} as boolean) then cast(0 as double) end
  {%- elif col["stype"] == "timestamp" -%}
    {{ dbt_rfm._rfm_sampling_days("anchor_time", "cast(" ~ expr ~ " as timestamp)") }}
  {%- elif col["stype"] in ("categorical", "text") -%}
    cast(null as double)
  {%- else -%}
    {{ exceptions.raise_compiler_error("model '" ~ table_name ~ "', column '" ~ col["name"] ~ "': stype '" ~ col["stype"] ~ "' has no cell encoding; expected numerical, boolean, timestamp, categorical or text") }}
  {%- endif -%}
{%- endmacro %}

{#- text_value of one cell: categorical and text cast to text, else null. -#}
{% macro _rfm_sampling_cell_text(col, expr) -%}
  {%- if col["stype"] in ("categorical", "text") -%}
    cast({{ expr }} as varchar)
  {%- else -%}
    cast(null as varchar)
  {%- endif -%}
{%- endmacro %}
