{#-
  sample_subgraph(graph, entity, anchors_relation, hops=none, fanouts=none)

  SQL for the temporal k-hop subgraph of every anchor in `anchors_relation` (columns entity_id,
  anchor_time) of the entity model `entity`, in ONE statement; output columns are those of
  rfm_runtime.schema.SUBGRAPH. `graph` is the dict of dbt_rfm.rfm_graph(). hops / fanouts default
  to vars dbt_rfm:hops (2) / dbt_rfm:fanouts ([16, 4]). The algorithm is docs/sampling.md; the
  in-process sampler dbt_rfm.sampling.sample returns exactly the same rows.
-#}
{% macro sample_subgraph(graph, entity, anchors_relation, hops=none, fanouts=none) -%}
  {{ return(adapter.dispatch('sample_subgraph', 'dbt_rfm')(graph, entity, anchors_relation, hops, fanouts)) }}
{%- endmacro %}

{#- Portable SQL: CTEs unrolled over hops and links by Jinja, row_number() for the caps. -#}
{% macro default__sample_subgraph(graph, entity, anchors_relation, hops, fanouts) -%}
{%- set caps = dbt_rfm._rfm_sampling_caps(hops, fanouts) -%}
{%- set _ = dbt_rfm._rfm_sampling_table(graph, entity) -%}
{%- set links = graph["links"] -%}
{%- set node_cols = "entity_id, anchor_time, table_name, row_key, parent_table, parent_key" -%}
{#- tables that can occur at each hop, known at compile time: only their links are expanded #}
{%- set hop_tables = [[entity]] -%}
{%- for h in range(1, caps.hops + 1) -%}
  {%- set reach = [] -%}
  {%- for lk in links -%}
    {%- if lk["child"] in hop_tables[h - 1] and lk["parent"] not in reach %}{% do reach.append(lk["parent"]) %}{% endif -%}
    {%- if lk["parent"] in hop_tables[h - 1] and caps.fanouts[h - 1] > 0 and lk["child"] not in reach %}{% do reach.append(lk["child"]) %}{% endif -%}
  {%- endfor -%}
  {%- do hop_tables.append(reach) -%}
{%- endfor -%}
with
anchors as (
    select distinct
        cast(entity_id as varchar) as entity_id,
        cast(anchor_time as timestamp) as anchor_time
    from {{ anchors_relation }} as rfm_anchor_source
),
{%- for name, t in graph["tables"].items() | sort %}
{#- one row per table row: text key, row time, and the text foreign key of each link from it #}
t_{{ name }} as (
    select
        {{ dbt_rfm._rfm_sampling_key_text(t["primary_key"], "r") }} as row_key
        {%- if t["time_column"] %},
        cast(r.{{ t["time_column"] }} as timestamp) as row_time
        {%- endif %}
        {%- for lk in links if lk["child"] == name %},
        {{ dbt_rfm._rfm_sampling_key_text(lk["child_columns"], "r", nullable=true) }} as fk_{{ links.index(lk) }}
        {%- endfor %}
    from {{ t["relation"] }} as r
),
{%- endfor %}
{%- for lk in links %}
{%- set child = graph["tables"][lk["child"]] %}
{%- set expands = [] %}
{%- for h in range(1, caps.hops + 1) if caps.fanouts[h - 1] > 0 and lk["parent"] in hop_tables[h - 1] %}
{%- do expands.append(h) %}
{%- endfor %}
{%- if expands %}
{#- link {{ lk["name"] }}: child rows ranked per parent key, oldest first (ties: row_key desc) #}
l{{ loop.index0 }}_children as (
    select fk_{{ loop.index0 }} as fk, row_key{% if child["time_column"] %}, row_time{% endif %},
        row_number() over (
            partition by fk_{{ loop.index0 }}
            order by {% if child["time_column"] %}row_time, {% endif %}row_key desc
        ) as asc_rank
    from t_{{ lk["child"] }}
    where fk_{{ loop.index0 }} is not null
    {%- if child["time_column"] %}
        and row_time is not null
    {%- endif %}
),
{%- endif %}
{%- endfor %}
hop_0 as (
    select
        entity_id,
        anchor_time,
        '{{ entity }}' as table_name,
        entity_id as row_key,
        cast(null as varchar) as parent_table,
        cast(null as varchar) as parent_key
    from anchors
),
seen_0 as (
    select entity_id, anchor_time, table_name, row_key from hop_0
),
{%- for h in range(1, caps.hops + 1) %}
{%- set cap = caps.fanouts[h - 1] %}
{%- set parts = [] %}
{%- for lk in links %}
{%- set i = loop.index0 %}
{%- set parent = graph["tables"][lk["parent"]] %}
{%- set child = graph["tables"][lk["child"]] %}
{%- if lk["child"] in hop_tables[h - 1] %}
{%- do parts.append("h" ~ h ~ "_l" ~ i ~ "_to_parent") %}
{#- link {{ lk["name"] }}: from a child row to its parent row, if the parent is visible #}
h{{ h }}_l{{ i }}_to_parent as (
    select f.entity_id, f.anchor_time, '{{ lk["parent"] }}' as table_name, p.row_key,
        f.table_name as parent_table, f.row_key as parent_key
    from hop_{{ h - 1 }} as f
    inner join t_{{ lk["child"] }} as c on c.row_key = f.row_key
    inner join t_{{ lk["parent"] }} as p on p.row_key = c.fk_{{ i }}
    where f.table_name = '{{ lk["child"] }}'
    {%- if parent["time_column"] %}
        and p.row_time <= f.anchor_time
    {%- endif %}
),
{%- endif %}
{%- if cap > 0 and lk["parent"] in hop_tables[h - 1] %}
{%- do parts.append("h" ~ h ~ "_l" ~ i ~ "_to_children") %}
{#- link {{ lk["name"] }}: from a parent row to its newest {{ cap }} visible child rows.
    The visible children of a node are a prefix of l{{ i }}_children's ascending order, so the
    newest {{ cap }} are the ranks n, n-1, ... where n counts the visible ones. #}
h{{ h }}_l{{ i }}_frontier as (
    select entity_id, anchor_time, row_key as fk
    from hop_{{ h - 1 }}
    where table_name = '{{ lk["parent"] }}'
),
h{{ h }}_l{{ i }}_visible as (
{%- if child["time_column"] %}
    {{ dbt_rfm._rfm_sampling_visible("h" ~ h ~ "_l" ~ i ~ "_frontier", "l" ~ i ~ "_children") }}
{%- else %}
    select f.entity_id, f.anchor_time, f.fk, c.n_visible
    from h{{ h }}_l{{ i }}_frontier as f
    inner join (
        select fk, max(asc_rank) as n_visible from l{{ i }}_children group by fk
    ) as c on c.fk = f.fk
{%- endif %}
),
h{{ h }}_l{{ i }}_ranks as (
    select v.entity_id, v.anchor_time, v.fk, v.n_visible - o.j as asc_rank
    from h{{ h }}_l{{ i }}_visible as v
    cross join (
        {%- for j in range(cap) %}
        select {{ j }} as j{% if not loop.last %} union all{% endif %}
        {%- endfor %}
    ) as o
    where v.n_visible - o.j >= 1
),
h{{ h }}_l{{ i }}_to_children as (
    select r.entity_id, r.anchor_time, '{{ lk["child"] }}' as table_name, c.row_key,
        '{{ lk["parent"] }}' as parent_table, r.fk as parent_key
    from h{{ h }}_l{{ i }}_ranks as r
    inner join l{{ i }}_children as c on c.fk = r.fk and c.asc_rank = r.asc_rank
),
{%- endif %}
{%- endfor %}
h{{ h }}_new as (
{%- for part in parts %}
    select {{ node_cols }} from {{ part }}
    {%- if not loop.last %}
    union all
    {%- endif %}
{%- else %}
    select {{ node_cols }} from hop_0 where 1 = 0
{%- endfor %}
),
{#- drop nodes seen at an earlier hop; keep the smallest (parent_table, parent_key) per node #}
hop_{{ h }} as (
    select {{ node_cols }}
    from (
        select n.*,
            row_number() over (
                partition by n.entity_id, n.anchor_time, n.table_name, n.row_key
                order by n.parent_table, n.parent_key
            ) as rfm_rank
        from h{{ h }}_new as n
        where not exists (
            select 1 from seen_{{ h - 1 }} as s
            where s.entity_id = n.entity_id and s.anchor_time = n.anchor_time
                and s.table_name = n.table_name and s.row_key = n.row_key
        )
    ) as deduplicated
    where rfm_rank = 1
),
seen_{{ h }} as (
    select entity_id, anchor_time, table_name, row_key from seen_{{ h - 1 }}
    union all
    select entity_id, anchor_time, table_name, row_key from hop_{{ h }}
),
{%- endfor %}
subgraph as (
{%- for h in range(caps.hops + 1) %}
    select entity_id, anchor_time, table_name, row_key, cast({{ h }} as integer) as hop,
        parent_table, parent_key
    from hop_{{ h }}
    {%- if not loop.last %}
    union all
    {%- endif %}
{%- endfor %}
)
select
    cast(entity_id as varchar) as entity_id,
    cast(anchor_time as timestamp) as anchor_time,
    cast(table_name as varchar) as table_name,
    cast(row_key as varchar) as row_key,
    hop,
    cast(parent_table as varchar) as parent_table,
    cast(parent_key as varchar) as parent_key
from subgraph
{%- endmacro %}
