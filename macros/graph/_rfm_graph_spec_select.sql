{#- Private: a select of the graph spec rows, one per (table, column, link membership), with
    exactly the columns and meaning of dbt_rfm.spec.GraphSpec.to_rows / SPEC_ROW_COLUMNS.
    A typed empty first step keeps the column types when the graph is empty. -#}
{% macro _rfm_graph_spec_select(spec) %}
{%- set text, int, bool = dbt.type_string(), dbt.type_int(), dbt.type_boolean() -%}
with typed_empty as (
    select
        cast(null as {{ text }}) as table_name,
        cast(null as {{ text }}) as relation,
        cast(null as {{ text }}) as column_name,
        cast(null as {{ int }}) as column_position,
        cast(null as {{ text }}) as data_type,
        cast(null as {{ text }}) as stype,
        cast(null as {{ int }}) as key_position,
        cast(null as {{ bool }}) as is_time_column,
        cast(null as {{ text }}) as available_at,
        cast(null as {{ text }}) as link_name,
        cast(null as {{ int }}) as link_position,
        cast(null as {{ text }}) as link_parent,
        cast(null as {{ text }}) as link_parent_column
    where 1 = 0
),

spec_rows as (
    select * from typed_empty
    {%- for table_name in spec.tables | sort %}
    {%- set t = spec.tables[table_name] %}
    {%- for c in t.columns %}
    {%- set pos = loop.index0 %}
    {%- set base = [dbt_rfm._rfm_sql_text(t.name), dbt_rfm._rfm_sql_text(t.relation),
                    dbt_rfm._rfm_sql_text(c.name), pos, dbt_rfm._rfm_sql_text(c.data_type),
                    dbt_rfm._rfm_sql_text(c.stype),
                    t.primary_key.index(c.name) if c.name in t.primary_key else 'null',
                    'true' if c.name == t.time_column else 'false',
                    dbt_rfm._rfm_sql_text(c.available_at) if c.available_at else 'null'] %}
    {%- set ns = namespace(linked=false) %}
    {%- for lk in spec.links if lk.child == t.name and c.name in lk.child_columns %}
    {%- set ns.linked = true %}
    {%- set i = lk.child_columns.index(c.name) %}
    union all select {{ base | join(', ') }}, {{ dbt_rfm._rfm_sql_text(lk.name) }}, {{ i }}, {{ dbt_rfm._rfm_sql_text(lk.parent) }}, {{ dbt_rfm._rfm_sql_text(lk.parent_columns[i]) }}
    {%- endfor %}
    {%- if not ns.linked %}
    union all select {{ base | join(', ') }}, null, null, null, null
    {%- endif %}
    {%- endfor %}
    {%- endfor %}
)

select * from spec_rows
{% endmacro %}

{% macro _rfm_sql_text(value) %}
    {{- return("'" ~ (value | replace("'", "''")) ~ "'") -}}
{% endmacro %}
