{#-
    rfm_link_integrity: the share of child rows whose (non-null) foreign key has no parent row
    is at most `max_dangling_rate` (default 0: every key must resolve).

    Arguments: `to` (the parent, `ref('x')`), `to_columns` (or `field` for one column), and,
    model-level, `columns` (the child's key columns; column-level the column itself). Rows whose
    key has a null part reference nothing and are not counted (SQL "match simple").

    When the rate is above `max_dangling_rate`, it fails with one row per dangling key value:
    the key columns, `n_rows` (child rows with that value) and `dangling_rate` (over all non-null
    child keys). Use `config: {severity: warn}` to report known dangling keys without failing,
    or `warn_if` / `error_if` on the number of distinct dangling values.
-#}
{% test rfm_link_integrity(model, column_name=none, columns=none, to=none, to_columns=none,
                           field=none, max_dangling_rate=0) %}
    {{ return(adapter.dispatch('test_rfm_link_integrity', 'dbt_rfm')(
        model, column_name, columns, to, to_columns, field, max_dangling_rate)) }}
{% endtest %}

{% macro default__test_rfm_link_integrity(model, column_name, columns, to, to_columns, field,
                                          max_dangling_rate) %}
{%- set child_keys = dbt_rfm._rfm_test_columns('rfm_link_integrity', 'columns', column_name, columns) -%}
{%- set parent_keys = dbt_rfm._rfm_test_columns('rfm_link_integrity', 'to_columns', field, to_columns) -%}
{%- if to is none -%}
    {{ exceptions.raise_compiler_error("rfm_link_integrity on " ~ model ~ ": argument 'to' is required (the parent, e.g. to: ref('planes'))") }}
{%- endif -%}
{%- if child_keys | length != parent_keys | length -%}
    {{ exceptions.raise_compiler_error("rfm_link_integrity on " ~ model ~ ": " ~ child_keys | length ~ " child columns " ~ child_keys ~ " but " ~ parent_keys | length ~ " parent columns " ~ parent_keys) }}
{%- endif -%}
with child_keys as (
    select {% for k in child_keys %}{{ k }}{% if not loop.last %}, {% endif %}{% endfor %}
    from {{ model }}
    where {% for k in child_keys %}{{ k }} is not null{% if not loop.last %} and {% endif %}{% endfor %}
),

parent_keys as (
    select distinct {% for k in parent_keys %}{{ k }} as parent_key_{{ loop.index0 }}{% if not loop.last %}, {% endif %}{% endfor %}
    from {{ to }}
),

dangling as (
    select child_keys.*
    from child_keys
    left join parent_keys
        on {% for k in child_keys %}child_keys.{{ k }} = parent_keys.parent_key_{{ loop.index0 }}{% if not loop.last %} and {% endif %}{% endfor %}
    where parent_keys.parent_key_0 is null
),

dangling_rate as (
    select
        case
            when (select count(*) from child_keys) = 0 then 0.0
            else (select count(*) from dangling) * 1.0 / (select count(*) from child_keys)
        end as dangling_rate
)

select
    {% for k in child_keys %}dangling.{{ k }}, {% endfor %}
    count(*) as n_rows,
    max(dangling_rate.dangling_rate) as dangling_rate
from dangling
cross join dangling_rate
where dangling_rate.dangling_rate > {{ max_dangling_rate }}
group by {% for k in child_keys %}dangling.{{ k }}{% if not loop.last %}, {% endif %}{% endfor %}
{% endmacro %}
