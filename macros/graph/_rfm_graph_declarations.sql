{#- Private: everything rfm-relevant in graph.nodes, before validation; the twin of
    dbt_rfm.manifest._declarations. Returns {tables: {unique_id: table}, links: [link]} where
    a table is {name, relation, database, schema, identifier, materialized, meta, model_key,
    column_key, tested: {column: [test names]}} and a link is {child, child_columns, parent,
    to_columns, source} (unique_ids for child and parent). -#}
{% macro _rfm_graph_declarations() %}
    {%- set graph_types = ['model', 'seed', 'snapshot'] -%}
    {%- set decl = {'tables': {}, 'links': []} -%}
    {#- the package's own models are never graph tables (their meta.rfm holds scoring settings) -#}
    {%- for uid, node in graph.nodes.items() if node.resource_type in graph_types
          and node.package_name != 'dbt_rfm' -%}
        {%- set config_meta = node.config.meta or {} -%}
        {%- set raw_meta = config_meta.rfm if 'rfm' in config_meta else (node.meta or {}).get('rfm') -%}
        {%- do decl.tables.update({uid: {
            'name': node.name, 'relation': node.relation_name or '',
            'database': node.database, 'schema': node.schema,
            'identifier': node.alias or node.name, 'materialized': node.config.materialized,
            'meta': dbt_rfm._rfm_parse_meta(node.name, raw_meta),
            'model_key': [], 'column_key': [], 'tested': {}}}) -%}
        {%- for c in node.constraints or [] -%}
            {%- do dbt_rfm._rfm_add_constraint(decl, uid, node, c, c.columns or []) -%}
        {%- endfor -%}
        {%- for col_name, col in (node.columns or {}).items() -%}
            {%- for c in col.constraints or [] -%}
                {%- do dbt_rfm._rfm_add_constraint(decl, uid, node, c, [col_name]) -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- for uid, test in graph.nodes.items() if test.resource_type == 'test' -%}
        {%- set meta = test.test_metadata or {} -%}
        {%- set kwargs = meta.kwargs or {} -%}
        {%- set child = test.attached_node -%}
        {%- set column = test.column_name or kwargs.column_name -%}
        {%- if meta.namespace in [none, 'dbt'] and child in decl.tables and column -%}
            {%- if meta.name in ['unique', 'not_null'] -%}
                {%- set tested = decl.tables[child].tested -%}
                {%- if column not in tested -%}{%- do tested.update({column: []}) -%}{%- endif -%}
                {%- if meta.name not in tested[column] -%}{%- do tested[column].append(meta.name) -%}{%- endif -%}
            {%- elif meta.name == 'relationships' -%}
                {%- set child_name = decl.tables[child].name -%}
                {%- set source = "a relationships test on model '" ~ child_name ~ "', column '" ~ column ~ "'" -%}
                {%- set parent = dbt_rfm._rfm_resolve_ref(test, kwargs.to, child_name, [column], source) -%}
                {%- if parent is not none -%}
                    {%- do decl.links.append({'child': child, 'child_columns': [column], 'parent': parent,
                        'to_columns': [kwargs.field] if kwargs.field else [], 'source': source}) -%}
                {%- endif -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(decl) }}
{% endmacro %}

{% macro _rfm_add_constraint(decl, uid, node, constraint, columns) %}
    {%- if constraint.type == 'primary_key' -%}
        {%- set level = 'model_key' if constraint.columns else 'column_key' -%}
        {%- for c in columns -%}{%- do decl.tables[uid][level].append(c) -%}{%- endfor -%}
    {%- elif constraint.type == 'foreign_key' -%}
        {%- set source = "a foreign_key constraint on model '" ~ node.name ~ "'" -%}
        {%- set parent = dbt_rfm._rfm_resolve_ref(node, constraint.to, node.name, columns, source) -%}
        {%- if parent is not none -%}
            {%- do decl.links.append({'child': uid, 'child_columns': columns | list, 'parent': parent,
                'to_columns': (constraint.to_columns or []) | list, 'source': source}) -%}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}

{#- unique_id of the model a link's `to: ref('x')` points at, via the declaring node's
    depends_on; none for a link to a dbt source (sources cannot be graph tables) -#}
{% macro _rfm_resolve_ref(declaring, to, child_name, columns, source) %}
    {%- if to is string and (to | trim).startswith('source(') -%}{{ return(none) }}{%- endif -%}
    {%- set target = dbt_rfm._rfm_ref_target(to) -%}
    {%- for uid in declaring.depends_on.nodes or [] -%}
        {%- set node = graph.nodes.get(uid) or graph.sources.get(uid) or {} -%}
        {%- if target is none and to and node.relation_name == to -%}
            {#- dbt renders `to` as the relation once the declaring model is compiled -#}
            {%- if uid.startswith('source.') -%}{{ return(none) }}{%- endif -%}
            {%- if node.resource_type in ['model', 'seed', 'snapshot'] -%}{{ return(uid) }}{%- endif -%}
        {%- elif target is not none and node.resource_type in ['model', 'seed', 'snapshot']
                 and node.name == target[1] and target[0] in [none, node.package_name] -%}
            {{ return(uid) }}
        {%- endif -%}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("model '" ~ child_name ~ "', column '" ~ columns | join('+') ~ "': " ~ source ~ " links to unknown model " ~ to ~ "; 'to' must be ref('<model>') of a model, seed or snapshot in the project") }}
{% endmacro %}
