{#-
    rfm_graph(): the relational graph declared in this project's YAML, validated against the
    warehouse. Call it at execute time (it returns an empty graph while dbt parses). Returns

        {"tables": {name: {"name", "relation", "primary_key": [..], "time_column": str or none,
                           "columns": [{"name", "data_type", "stype", "available_at"}]}},
         "links": [{"name", "child", "child_columns": [..], "parent", "parent_columns": [..]}]}

    Links are sorted by name; `parent_columns` is the parent's primary key in key order. The
    Python twin is dbt_rfm.manifest.graph_spec_from_manifest; docs/graph.md has the rules.
    A model calling it must run after the graph models: ref `rfm_graph_spec`, which depends on
    them through the `dbt_rfm:graph_models` var.
-#}
{% macro rfm_graph() %}
    {%- if not execute -%}
        {{ return({'tables': {}, 'links': []}) }}
    {%- endif -%}
    {%- set decl = dbt_rfm._rfm_graph_declarations() -%}
    {%- set why = {} -%}
    {%- for uid, t in decl.tables.items() if t.meta.declared and uid not in why -%}
        {%- do why.update({uid: 'it has meta.rfm'}) -%}
    {%- endfor -%}
    {%- for lk in decl.links -%}
        {%- if lk.child not in why -%}{%- do why.update({lk.child: 'it declares a link'}) -%}{%- endif -%}
        {%- if lk.parent not in why -%}{%- do why.update({lk.parent: 'a link points to it'}) -%}{%- endif -%}
    {%- endfor -%}
    {%- set names, cols, keys = {}, {}, {} -%}
    {%- for uid in why -%}
        {%- set t = decl.tables[uid] -%}
        {%- do names.update({uid: t.name}) -%}
        {%- if t.materialized == 'ephemeral' -%}
            {{ exceptions.raise_compiler_error("model '" ~ t.name ~ "' is ephemeral; models in the rfm graph must be tables or views") }}
        {%- endif -%}
        {%- set relation = adapter.get_relation(database=t.database, schema=t.schema, identifier=t.identifier) -%}
        {%- set types = {} -%}
        {%- if relation is not none -%}
            {%- for c in adapter.get_columns_in_relation(relation) -%}
                {%- do types.update({c.name: c.dtype | trim | lower}) -%}
            {%- endfor -%}
        {%- endif -%}
        {%- if not types -%}
            {{ exceptions.raise_compiler_error("model '" ~ t.name ~ "': no columns found in the warehouse for " ~ t.relation ~ "; build it first") }}
        {%- endif -%}
        {%- do cols.update({uid: {'model': t.name, 'types': types}}) -%}
    {%- endfor -%}
    {%- set links = dbt_rfm._rfm_graph_links(decl, names, cols, keys) | sort(attribute='name') -%}
    {%- set tables = {} -%}
    {%- for uid in why -%}
        {%- if uid not in keys -%}
            {%- do keys.update({uid: dbt_rfm._rfm_primary_key(decl.tables[uid], cols[uid])}) -%}
        {%- endif -%}
        {%- set table = dbt_rfm._rfm_graph_table(decl.tables[uid], cols[uid], keys[uid], links, why[uid]) -%}
        {%- do tables.update({table.name: table}) -%}
    {%- endfor -%}
    {{ return({'tables': tables, 'links': links}) }}
{% endmacro %}
