{#-
    rfm_known_before_anchor: no cell holds a value before it was known.

    For every column of the rfm graph with an availability time (meta.rfm.available_at), the
    cells of that column in `model` (rfm_cells, or any table of its columns) must come from rows
    whose availability time is not null and strictly before the cell's anchor_time
    (docs/graph.md). Fails with one row per offending cell; passes trivially when the graph
    declares no availability times.
-#}
{% test rfm_known_before_anchor(model) %}
{%- set graph = dbt_rfm.rfm_graph() -%}
{%- set checks = [] -%}
{%- for name, t in graph["tables"].items() | sort -%}
    {%- for col in t["columns"] if col.get("available_at") -%}
        {%- do checks.append((t, col)) -%}
    {%- endfor -%}
{%- endfor -%}
{%- for t, col in checks %}
select c.table_name, c.row_key, c.column_name, c.anchor_time,
    cast(r.{{ col["available_at"] }} as timestamp) as available_at
from {{ model }} as c
inner join {{ t["relation"] }} as r
    on {{ dbt_rfm._rfm_sampling_key_text(t["primary_key"], "r") }} = c.row_key
where c.table_name = '{{ t["name"] }}' and c.column_name = '{{ col["name"] }}'
    and not coalesce(cast(r.{{ col["available_at"] }} as timestamp) < c.anchor_time, false)
{%- if not loop.last %}
union all
{%- endif %}
{%- else %}
select cast(null as varchar) as table_name where 1 = 0
{%- endfor %}
{% endtest %}
