{#- Private: the stype of a non-key column from its data type, or none when there is no rule;
    the twin of dbt_rfm.stypes.infer_stype. -#}
{% macro _rfm_infer_stype(data_type) %}
    {%- set family_stypes = {'integer': 'numerical', 'float': 'numerical', 'decimal': 'numerical',
        'boolean': 'boolean', 'date': 'timestamp', 'timestamp': 'timestamp', 'text': 'categorical'} -%}
    {{ return(family_stypes.get(dbt_rfm._rfm_type_family(data_type))) }}
{% endmacro %}
