{#- Private helper of the rfm generic tests: the key columns, from a list argument or the
    column the test is attached to. -#}
{% macro _rfm_test_columns(test_name, argument, column_name, columns) %}
    {%- if columns is not none and columns is not string and columns | length > 0 -%}
        {{ return(columns | list) }}
    {%- elif columns is string -%}
        {{ return([columns]) }}
    {%- elif column_name is not none -%}
        {{ return([column_name]) }}
    {%- endif -%}
    {{ exceptions.raise_compiler_error(test_name ~ ": give '" ~ argument ~ "' (a list of columns), or attach the test to a column") }}
{% endmacro %}
