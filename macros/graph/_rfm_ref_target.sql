{#- Private: [package or none, model] named by "ref('model')" / "ref('pkg', 'model')", or none.
    Only names the target: it is resolved through the declaring node's depends_on. -#}
{% macro _rfm_ref_target(to) %}
    {%- if to is not string -%}{{ return(none) }}{%- endif -%}
    {%- set m = modules.re.match("^\\s*ref\\(\\s*(['\"])([^'\"]+)\\1\\s*(?:,\\s*(['\"])([^'\"]+)\\3\\s*)?(?:,[^)]*)?\\)\\s*$", to) -%}
    {%- if m is none -%}{{ return(none) }}{%- endif -%}
    {%- if m.group(4) -%}{{ return([m.group(2), m.group(4)]) }}{%- endif -%}
    {{ return([none, m.group(2)]) }}
{% endmacro %}
