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
{#- known at compile time: plan[h][table] = the links that reach nodes of that table at hop h,
    {"ups": from their child rows, "downs": from their parent rows}, and hop_tables[h] those
    tables; only their links are expanded. A table whose nodes at hop h-1 all came down one
    link does not go back up it: that leads to their parents, seen at hop h-2 (step 3). #}
{%- set hop_tables = [[entity]] -%}
{%- set plan = [{}] -%}
{%- for h in range(1, caps.hops + 1) -%}
  {%- set step = {} -%}
  {%- for lk in links -%}
    {%- set i = loop.index0 -%}
    {%- set came = plan[h - 1].get(lk["child"]) -%}
    {%- if lk["child"] in hop_tables[h - 1] and not (came and not came["ups"] and came["downs"] == [i]) -%}
      {%- do step.setdefault(lk["parent"], {"ups": [], "downs": []})["ups"].append(i) -%}
    {%- endif -%}
    {%- if lk["parent"] in hop_tables[h - 1] and caps.fanouts[h - 1] > 0 -%}
      {%- do step.setdefault(lk["child"], {"ups": [], "downs": []})["downs"].append(i) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- do plan.append(step) -%}
  {%- do hop_tables.append(step.keys() | sort) -%}
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
{#- the links from each table (it is their child) #}
{%- set fk_links = {} %}
{%- for name in graph["tables"] %}
{%- do fk_links.update({name: []}) %}
{%- endfor %}
{%- for lk in links %}{% do fk_links[lk["child"]].append(loop.index0) %}{% endfor %}
{%- for lk in links %}
{%- set child = graph["tables"][lk["child"]] %}
{%- set expands = [] %}
{%- for h in range(1, caps.hops + 1) if caps.fanouts[h - 1] > 0 and lk["parent"] in hop_tables[h - 1] %}
{%- do expands.append(h) %}
{%- endfor %}
{%- if expands %}
{#- link {{ lk["name"] }}: child rows ranked per parent key, oldest first (ties: row_key desc);
    next_time: the next child's time in that order (equal on ties) #}
l{{ loop.index0 }}_children as (
    select fk_{{ loop.index0 }} as fk, row_key{% if child["time_column"] %}, row_time{% endif %},
        row_number() over (
            partition by fk_{{ loop.index0 }}
            order by {% if child["time_column"] %}row_time, {% endif %}row_key desc
        ) as asc_rank
        {%- if child["time_column"] %},
        lead(row_time) over (
            partition by fk_{{ loop.index0 }}
            order by row_time, row_key desc
        ) as next_time
        {%- endif %}
    from t_{{ lk["child"] }}
    where fk_{{ loop.index0 }} is not null
    {%- if child["time_column"] %}
        and row_time is not null
    {%- endif %}
    {%- if expands == [1] %}
        {#- used at hop 1 only: the children of the anchors' own rows #}
        and fk_{{ loop.index0 }} in (select entity_id from anchors)
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
{#- h<h>_<table>: the nodes of <table> at hop h (hop 0: hop_0) #}
{%- for h in range(1, caps.hops + 1) %}
{%- set cap = caps.fanouts[h - 1] %}
{%- set prev = hop_tables[h - 1] %}
{%- set up_from = [] %}
{%- for t in plan[h].values() %}{% for i in t["ups"] if links[i]["child"] not in up_from %}{% do up_from.append(links[i]["child"]) %}{% endfor %}{% endfor %}
{%- for c in up_from | sort %}
{#- hop {{ h - 1 }} rows of {{ c }} with their foreign keys, joined once for all its links; the
    keys are made here, from the model, only for these rows #}
h{{ h }}_{{ c }}_fks as (
    select f.entity_id, f.anchor_time, f.row_key
        {%- for j in fk_links[c] %},
        {{ dbt_rfm._rfm_sampling_key_text(links[j]["child_columns"], "r", nullable=true) }} as fk_{{ j }}
        {%- endfor %}
    from {% if h == 1 %}hop_0{% else %}h{{ h - 1 }}_{{ c }}{% endif %} as f
    inner join {{ graph["tables"][c]["relation"] }} as r
        on {{ dbt_rfm._rfm_sampling_key_text(graph["tables"][c]["primary_key"], "r") }} = f.row_key
),
{%- endfor %}
{%- for lk in links %}
{%- set i = loop.index0 %}
{%- set child = graph["tables"][lk["child"]] %}
{%- if cap > 0 and lk["parent"] in prev %}
{#- link {{ lk["name"] }}: from a parent row to its newest {{ cap }} visible child rows.
    The visible children of a node are a prefix of l{{ i }}_children's ascending order, so the
    newest {{ cap }} are the ranks n, n-1, ... where n counts the visible ones. #}
h{{ h }}_l{{ i }}_frontier as (
    select entity_id, anchor_time, row_key as fk
    from {% if h == 1 %}hop_0{% else %}h{{ h - 1 }}_{{ lk["parent"] }}{% endif %}
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
{#- one row per (anchor, child node): a child row has one parent per link, and the frontier
    nodes of an anchor are distinct #}
h{{ h }}_l{{ i }}_to_children as (
    select r.entity_id, r.anchor_time, c.row_key,
        '{{ lk["parent"] }}' as parent_table, r.fk as parent_key
    from h{{ h }}_l{{ i }}_ranks as r
    inner join l{{ i }}_children as c on c.fk = r.fk and c.asc_rank = r.asc_rank
),
{%- endif %}
{%- endfor %}
{%- for tname in hop_tables[h] | sort %}
{%- set ups = plan[h][tname]["ups"] %}
{%- set downs = plan[h][tname]["downs"] %}
{%- set ptables = [] %}
{%- set up_children = [] %}
{%- for i in ups if links[i]["child"] not in up_children %}{% do up_children.append(links[i]["child"]) %}{% endfor %}
{%- for c in up_children %}{% do ptables.append(c) %}{% endfor %}
{%- for i in downs if links[i]["parent"] not in ptables %}{% do ptables.append(links[i]["parent"]) %}{% endfor %}
{%- set sources = [] %}
{%- for i in downs %}{% do sources.append("h" ~ h ~ "_l" ~ i ~ "_to_children") %}{% endfor %}
{%- if ups %}
{%- do sources.insert(0, "h" ~ h ~ "_" ~ tname ~ "_up") %}
{#- {{ tname }} rows reached from their children: one candidate per (anchor, node, parent
    table) with the smallest parent key, kept if the row is visible (keys are unique) #}
h{{ h }}_{{ tname }}_up as (
    select x.entity_id, x.anchor_time, x.row_key, x.parent_table, x.parent_key
    from (
        select entity_id, anchor_time, row_key,
            {%- if up_children | length == 1 %}
            '{{ up_children[0] }}' as parent_table,
            {%- else %}
            parent_table,
            {%- endif %}
            min(parent_key) as parent_key
        from (
        {%- for i in ups %}
        {%- set c = links[i]["child"] %}
            select entity_id, anchor_time, fk_{{ i }} as row_key,
                '{{ c }}' as parent_table, row_key as parent_key
            from h{{ h }}_{{ c }}_fks
            where fk_{{ i }} is not null
            {%- if not loop.last %}
            union all
            {%- endif %}
        {%- endfor %}
        ) as candidates
        group by entity_id, anchor_time, row_key{% if up_children | length > 1 %}, parent_table{% endif %}
    ) as x
    inner join t_{{ tname }} as p on p.row_key = x.row_key
    {%- if graph["tables"][tname]["time_column"] %}
    where p.row_time <= x.anchor_time
    {%- endif %}
),
{%- endif %}
{%- set single = sources | length == 1 and (downs or ptables | length == 1) %}
{#- step 4 for {{ tname }}: one row per (anchor, node), the smallest (parent_table, parent_key) #}
h{{ h }}_{{ tname }}_new as (
{%- if single %}
    select entity_id, anchor_time, row_key, parent_table, parent_key from {{ sources[0] }}
{%- elif ptables | length == 1 %}
    select entity_id, anchor_time, row_key, '{{ ptables[0] }}' as parent_table,
        min(parent_key) as parent_key
    from (
        {{- dbt_rfm._rfm_union_all(sources, "entity_id, anchor_time, row_key, parent_key") }}
    ) as candidates
    group by entity_id, anchor_time, row_key
{%- else %}
{#- several parent tables: their sorted position, zero-padded, prefixes the parent key so that
    one min() orders by (parent_table, parent_key) #}
{%- set ptables = ptables | sort(case_sensitive=true) %}
{%- set width = ((ptables | length) - 1) | string | length %}
    select entity_id, anchor_time, row_key,
        case substr(tagged, 1, {{ width }})
        {%- for p in ptables %}
            when '{{ ("0" * width ~ loop.index0)[-width:] }}' then '{{ p }}'
        {%- endfor %}
        end as parent_table,
        substr(tagged, {{ width + 1 }}) as parent_key
    from (
        select entity_id, anchor_time, row_key, min(tag || parent_key) as tagged
        {%- set tag -%}
            case parent_table
            {%- for p in ptables %} when '{{ p }}' then '{{ ("0" * width ~ loop.index0)[-width:] }}'{% endfor %}
            end
        {%- endset %}
        from (
            {{- dbt_rfm._rfm_union_all(sources, "entity_id, anchor_time, row_key, parent_key, " ~ tag ~ " as tag") }}
        ) as candidates
        group by entity_id, anchor_time, row_key
    ) as tagged_candidates
{%- endif %}
),
{#- step 3 for {{ tname }}: drop nodes present at an earlier hop (where {{ tname }} can occur) #}
h{{ h }}_{{ tname }} as (
    select x.entity_id, x.anchor_time, x.row_key, x.parent_table, x.parent_key
    from h{{ h }}_{{ tname }}_new as x
    {%- for j in range(h) if tname in hop_tables[j] %}
    {% if loop.first %}where{% else %}    and{% endif %} not exists (
        select 1 from {% if j == 0 %}hop_0{% else %}h{{ j }}_{{ tname }}{% endif %} as s
        where s.entity_id = x.entity_id and s.anchor_time = x.anchor_time
            and s.row_key = x.row_key
    )
    {%- endfor %}
),
{%- endfor %}
hop_{{ h }} as (
{%- for tname in hop_tables[h] | sort %}
    select entity_id, anchor_time, '{{ tname }}' as table_name, row_key,
        parent_table, parent_key
    from h{{ h }}_{{ tname }}
    {%- if not loop.last %}
    union all
    {%- endif %}
{%- else %}
    select {{ node_cols }} from hop_0 where 1 = 0
{%- endfor %}
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
