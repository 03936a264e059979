{#- Private: the type family of a warehouse data type; the twin of dbt_rfm.stypes.type_family.
    integer widths are one family, decimals with scale 0 are integers, varchar/text are text. -#}
{% macro _rfm_type_family(data_type) %}
    {%- set t = data_type | trim | lower -%}
    {%- if t.endswith(']') -%}{{ return('list') }}{%- endif -%}
    {%- set base = t.split('(')[0] | trim -%}
    {%- set params = modules.re.findall('\\d+', t[(t.split('(')[0] | length):]) -%}
    {%- set integer = ['tinyint', 'smallint', 'integer', 'int', 'bigint', 'hugeint', 'utinyint',
        'usmallint', 'uinteger', 'ubigint', 'uhugeint', 'int1', 'int2', 'int4', 'int8', 'int16',
        'int32', 'int64', 'int128', 'long', 'short', 'signed', 'byteint'] -%}
    {%- set float = ['float', 'double', 'real', 'float4', 'float8', 'double precision', 'float64'] -%}
    {%- set decimal = ['decimal', 'numeric', 'number', 'bignumeric'] -%}
    {%- set text = ['varchar', 'char', 'text', 'string', 'bpchar', 'character',
        'character varying', 'nvarchar', 'nchar'] -%}
    {%- if base in integer -%}{{ return('integer') }}{%- endif -%}
    {%- if base in decimal -%}
        {%- set scale_zero = params | length == 2 and (params[1] | int) == 0 -%}
        {%- set bare_number = base == 'number' and params | length == 0 -%}
        {{ return('integer' if scale_zero or bare_number else 'decimal') }}
    {%- endif -%}
    {%- if base in float -%}{{ return('float') }}{%- endif -%}
    {%- if base in text -%}{{ return('text') }}{%- endif -%}
    {%- if base in ['boolean', 'bool'] -%}{{ return('boolean') }}{%- endif -%}
    {%- if base == 'date' -%}{{ return('date') }}{%- endif -%}
    {%- if base.startswith('timestamp') or base.startswith('datetime') -%}{{ return('timestamp') }}{%- endif -%}
    {{ return(base.split(' ')[0]) }}
{% endmacro %}
