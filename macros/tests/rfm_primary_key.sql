{#-
    rfm_primary_key: the key of a model (possibly composite) is unique and never null.

    Use it column-level (the column is the key) or model-level with `columns: [a, b]`.
    Fails with one row per offending key value: `problem` is 'null key' or 'duplicate key' and
    `n_rows` how many rows carry that value.
-#}
{% test rfm_primary_key(model, column_name=none, columns=none) %}
    {{ return(adapter.dispatch('test_rfm_primary_key', 'dbt_rfm')(model, column_name, columns)) }}
{% endtest %}

{% macro default__test_rfm_primary_key(model, column_name, columns) %}
{%- set keys = dbt_rfm._rfm_test_columns('rfm_primary_key', 'columns', column_name, columns) -%}
with key_rows as (
    select {{ keys | join(', ') }}
    from {{ model }}
),

null_keys as (
    select {{ keys | join(', ') }}, 'null key' as problem, count(*) as n_rows
    from key_rows
    where {% for k in keys %}{{ k }} is null{% if not loop.last %} or {% endif %}{% endfor %}
    group by {{ keys | join(', ') }}
),

duplicate_keys as (
    select {{ keys | join(', ') }}, 'duplicate key' as problem, count(*) as n_rows
    from key_rows
    where {% for k in keys %}{{ k }} is not null{% if not loop.last %} and {% endif %}{% endfor %}
    group by {{ keys | join(', ') }}
    having count(*) > 1
)

select * from null_keys
union all
select * from duplicate_keys
{% endmacro %}
