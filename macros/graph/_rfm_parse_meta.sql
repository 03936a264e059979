{#- Private: config.meta.rfm of one model, checked; the twin of dbt_rfm.rfm_meta.RfmMeta.
    Returns {time_column, exclude, stypes, primary_key, targets, available_at, declared}. -#}
{% macro _rfm_parse_meta(model_name, raw) %}
    {%- set known = ['available_at', 'exclude', 'primary_key', 'stypes', 'targets', 'time_column'] -%}
    {%- if raw is none -%}
        {{ return({'time_column': none, 'exclude': [], 'stypes': {}, 'primary_key': none,
                   'targets': none, 'available_at': {}, 'declared': false}) }}
    {%- endif -%}
    {%- if raw is not mapping -%}
        {{ exceptions.raise_compiler_error("model '" ~ model_name ~ "': meta.rfm must be a mapping; found " ~ raw) }}
    {%- endif -%}
    {%- for key in raw -%}
        {%- if key not in known -%}
            {{ exceptions.raise_compiler_error("model '" ~ model_name ~ "': unknown key '" ~ key ~ "' under meta.rfm" ~ dbt_rfm._rfm_did_you_mean(key, known) ~ "; known keys: " ~ known | join(', ')) }}
        {%- endif -%}
    {%- endfor -%}
    {%- set time_column = raw.get('time_column') -%}
    {%- if time_column is not none and time_column is not string -%}
        {{ exceptions.raise_compiler_error("model '" ~ model_name ~ "': meta.rfm.time_column must be a column name; found " ~ time_column) }}
    {%- endif -%}
    {%- set stypes = raw.get('stypes') or {} -%}
    {%- if stypes is not mapping -%}
        {{ exceptions.raise_compiler_error("model '" ~ model_name ~ "': meta.rfm.stypes must map column names to stypes; found " ~ stypes) }}
    {%- endif -%}
    {%- set available_at = raw.get('available_at') or {} -%}
    {%- if available_at is not mapping or (available_at.values() | reject('string') | list | length) > 0 -%}
        {{ exceptions.raise_compiler_error("model '" ~ model_name ~ "': meta.rfm.available_at must map column names to the date or timestamp column that says when each becomes known; found " ~ available_at) }}
    {%- endif -%}
    {%- set pk = raw.get('primary_key') -%}
    {{ return({'time_column': time_column,
               'exclude': dbt_rfm._rfm_meta_names(model_name, 'exclude', raw.get('exclude')),
               'stypes': stypes,
               'primary_key': dbt_rfm._rfm_meta_names(model_name, 'primary_key', pk) if pk is not none else none,
               'targets': raw.get('targets'),
               'available_at': available_at,
               'declared': true}) }}
{% endmacro %}

{% macro _rfm_meta_names(model_name, key, value) %}
    {%- if value is none -%}{{ return([]) }}{%- endif -%}
    {%- if value is string -%}{{ return([value]) }}{%- endif -%}
    {%- if value is iterable and value is not mapping and (value | reject('string') | list | length) == 0 -%}
        {{ return(value | list) }}
    {%- endif -%}
    {{ exceptions.raise_compiler_error("model '" ~ model_name ~ "': meta.rfm." ~ key ~ " must be a list of column names; found " ~ value) }}
{% endmacro %}
