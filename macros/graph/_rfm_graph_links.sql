{#- Private: validated links, [{name, child, child_columns, parent, parent_columns}] with
    parent_columns the parent's primary key in key order; the twin of
    dbt_rfm.graph_rules._links. `keys` caches primary keys by unique_id (filled here). -#}
{% macro _rfm_graph_links(decl, names, cols, keys) %}
    {%- set out = {} -%}
    {%- set sources = {} -%}
    {%- for lk in decl.links -%}
        {%- set child, parent = names[lk.child], names[lk.parent] -%}
        {%- set child_cols = [] -%}
        {%- for c in lk.child_columns -%}
            {%- do child_cols.append(dbt_rfm._rfm_resolve_column(cols[lk.child], c, lk.source ~ ", to model '" ~ parent ~ "'")) -%}
        {%- endfor -%}
        {%- set link_name = child ~ '.' ~ child_cols | join('+') ~ '->' ~ parent -%}
        {%- if lk.parent not in keys -%}
            {%- do keys.update({lk.parent: dbt_rfm._rfm_primary_key(decl.tables[lk.parent], cols[lk.parent])}) -%}
        {%- endif -%}
        {%- set pk = keys[lk.parent] -%}
        {%- if not pk -%}
            {{ exceptions.raise_compiler_error("model '" ~ parent ~ "' has no primary key, but link '" ~ link_name ~ "' points to it; declare one with a primary_key constraint, unique + not_null tests on one column, or meta.rfm.primary_key") }}
        {%- endif -%}
        {%- set to_cols = [] -%}
        {%- for c in (lk.to_columns or pk) -%}
            {%- do to_cols.append(dbt_rfm._rfm_resolve_column(cols[lk.parent], c, lk.source ~ ", link '" ~ link_name ~ "'")) -%}
        {%- endfor -%}
        {%- if to_cols | length != child_cols | length -%}
            {{ exceptions.raise_compiler_error("link '" ~ link_name ~ "': " ~ child_cols | length ~ " child column(s) (" ~ child_cols | join(', ') ~ ") but " ~ to_cols | length ~ " parent column(s) (" ~ to_cols | join(', ') ~ ")") }}
        {%- endif -%}
        {%- if (to_cols | sort) != (pk | sort) -%}
            {{ exceptions.raise_compiler_error("link '" ~ link_name ~ "': points to column(s) " ~ to_cols | join(', ') ~ " of model '" ~ parent ~ "', which are not its primary key (" ~ pk | join(', ') ~ "); a link must point at the parent's primary key") }}
        {%- endif -%}
        {%- set ordered = [] -%}
        {%- for p in pk -%}{%- do ordered.append(child_cols[to_cols.index(p)]) -%}{%- endfor -%}
        {%- set name = child ~ '.' ~ ordered | join('+') ~ '->' ~ parent -%}
        {%- for i in range(pk | length) -%}
            {%- set ct, pt = cols[lk.child].types[ordered[i]], cols[lk.parent].types[pk[i]] -%}
            {%- if dbt_rfm._rfm_type_family(ct) != dbt_rfm._rfm_type_family(pt) -%}
                {{ exceptions.raise_compiler_error("link '" ~ name ~ "': model '" ~ child ~ "', column '" ~ ordered[i] ~ "' is " ~ ct ~ " but model '" ~ parent ~ "', column '" ~ pk[i] ~ "' is " ~ pt ~ "; a foreign key must have the type of the key it points to") }}
            {%- endif -%}
        {%- endfor -%}
        {%- if name in out -%}
            {%- set pair = [sources[name], lk.source] | sort -%}
            {{ exceptions.raise_compiler_error("link '" ~ name ~ "' is declared twice: by " ~ pair[0] ~ " and by " ~ pair[1] ~ "; declare each link once (rfm_link_integrity tests a link without declaring it)") }}
        {%- endif -%}
        {%- do sources.update({name: lk.source}) -%}
        {%- do out.update({name: {'name': name, 'child': child, 'child_columns': ordered,
                                  'parent': parent, 'parent_columns': pk | list}}) -%}
    {%- endfor -%}
    {{ return(out.values() | list) }}
{% endmacro %}
