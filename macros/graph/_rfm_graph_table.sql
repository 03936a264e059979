{#- Private: one validated graph table {name, relation, primary_key, time_column, columns}
    (columns: {name, data_type, stype, available_at});
    the twin of dbt_rfm.graph_rules._table. -#}
{% macro _rfm_graph_table(t, columns, pk, links, why) %}
    {%- set name, meta = t.name, t.meta -%}
    {%- if not pk -%}
        {{ exceptions.raise_compiler_error("model '" ~ name ~ "' is in the rfm graph (" ~ why ~ ") but has no primary key; declare one with a primary_key constraint, unique + not_null tests on one column, or meta.rfm.primary_key (a table with no natural key needs a surrogate, like the demo's flights.flight_id)") }}
    {%- endif -%}
    {%- set key_cols = pk | list -%}
    {%- for lk in links if lk.child == name -%}
        {%- for c in lk.child_columns if c not in key_cols -%}{%- do key_cols.append(c) -%}{%- endfor -%}
    {%- endfor -%}
    {%- set ns = namespace(time_col=none) -%}
    {%- if meta.time_column is not none -%}
        {%- set ns.time_col = dbt_rfm._rfm_resolve_column(columns, meta.time_column, 'meta.rfm.time_column') -%}
        {%- set dtype = columns.types[ns.time_col] -%}
        {%- if dbt_rfm._rfm_type_family(dtype) not in ['date', 'timestamp'] -%}
            {{ exceptions.raise_compiler_error("model '" ~ name ~ "', column '" ~ ns.time_col ~ "': meta.rfm.time_column must be a date or timestamp; found " ~ dtype) }}
        {%- endif -%}
    {%- endif -%}
    {%- set excluded = [] -%}
    {%- for c in meta.exclude -%}{%- do excluded.append(dbt_rfm._rfm_resolve_column(columns, c, 'meta.rfm.exclude')) -%}{%- endfor -%}
    {%- for c in excluded | unique | sort if c in key_cols or c == ns.time_col -%}
        {{ exceptions.raise_compiler_error("model '" ~ name ~ "', column '" ~ c ~ "': cannot be excluded, it is " ~ ('a key column' if c in key_cols else 'the time column')) }}
    {%- endfor -%}
    {%- set stype_names = ['numerical', 'categorical', 'text', 'timestamp', 'boolean', 'key'] -%}
    {%- set overrides = {} -%}
    {%- for raw_c, stype in meta.stypes.items() -%}
        {%- set c = dbt_rfm._rfm_resolve_column(columns, raw_c, 'meta.rfm.stypes') -%}
        {%- if stype not in stype_names -%}
            {{ exceptions.raise_compiler_error("model '" ~ name ~ "', column '" ~ c ~ "': unknown stype '" ~ stype ~ "' in meta.rfm.stypes" ~ dbt_rfm._rfm_did_you_mean(stype, stype_names) ~ "; stypes: " ~ stype_names | join(', ')) }}
        {%- endif -%}
        {%- if c in key_cols and stype != 'key' -%}
            {{ exceptions.raise_compiler_error("model '" ~ name ~ "', column '" ~ c ~ "': is a key column (stype 'key'); meta.rfm.stypes cannot make it '" ~ stype ~ "'") }}
        {%- endif -%}
        {%- do overrides.update({c: stype}) -%}
    {%- endfor -%}
    {%- set specs = [] -%}
    {%- for c, dtype in columns.types.items() if c not in excluded -%}
        {%- set stype = 'key' if c in key_cols else (overrides.get(c) or dbt_rfm._rfm_infer_stype(dtype)) -%}
        {%- if stype is none -%}
            {%- do log("dbt-rfm: model '" ~ name ~ "', column '" ~ c ~ "': left out, no stype for data type " ~ dtype ~ "; set meta.rfm.stypes to keep it") -%}
        {%- else -%}
            {%- do specs.append({'name': c, 'data_type': dtype, 'stype': stype}) -%}
        {%- endif -%}
    {%- endfor -%}
    {#- meta.rfm.available_at: column -> its availability column (a time that is not a cell) -#}
    {%- set gates = {} -%}
    {%- for raw_c, raw_at in meta.available_at.items() -%}
        {%- set c = dbt_rfm._rfm_resolve_column(columns, raw_c, 'meta.rfm.available_at') -%}
        {%- set at = dbt_rfm._rfm_resolve_column(columns, raw_at, 'meta.rfm.available_at.' ~ c) -%}
        {%- if dbt_rfm._rfm_type_family(columns.types[at]) not in ['date', 'timestamp'] -%}
            {{ exceptions.raise_compiler_error("model '" ~ name ~ "', column '" ~ at ~ "': meta.rfm.available_at." ~ c ~ " must name a date or timestamp column; found " ~ columns.types[at]) }}
        {%- endif -%}
        {%- for col in [c, at] if col in key_cols or col in excluded -%}
            {{ exceptions.raise_compiler_error("model '" ~ name ~ "', column '" ~ col ~ "': is " ~ ('a key column' if col in key_cols else 'excluded (meta.rfm.exclude)') ~ ", so meta.rfm.available_at cannot use it") }}
        {%- endfor -%}
        {%- do gates.update({c: at}) -%}
    {%- endfor -%}
    {%- for c in gates if c in gates.values() -%}
        {{ exceptions.raise_compiler_error("model '" ~ name ~ "', column '" ~ c ~ "': meta.rfm.available_at uses it as a time, so it cannot have an availability time itself") }}
    {%- endfor -%}
    {%- for spec in specs -%}
        {%- do spec.update({'available_at': gates.get(spec.name)}) -%}
        {%- if spec.name in gates.values() and spec.stype != 'timestamp' -%}
            {{ exceptions.raise_compiler_error("model '" ~ name ~ "', column '" ~ spec.name ~ "': meta.rfm.available_at uses it as a time, so its stype must be 'timestamp'; found '" ~ spec.stype ~ "'") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return({'name': name, 'relation': t.relation, 'primary_key': pk | list,
               'time_column': ns.time_col, 'columns': specs}) }}
{% endmacro %}
