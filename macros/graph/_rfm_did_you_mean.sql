{#- Private: " (did you mean 'x'?)" for the choice sharing most character pairs, or "".
    Dice similarity over character bigrams >= 0.5, ties to the first choice in sorted order;
    the twin of dbt_rfm.rfm_meta.closest (same wording, same pick). -#}
{% macro _rfm_did_you_mean(word, choices) %}
    {%- set ns = namespace(best='', score=0.0) -%}
    {%- set mine = dbt_rfm._rfm_bigrams(word) -%}
    {%- for choice in choices | sort -%}
        {%- set theirs = dbt_rfm._rfm_bigrams(choice) -%}
        {%- set common = mine | select('in', theirs) | list | length -%}
        {%- set score = 2.0 * common / ((mine | length) + (theirs | length)) -%}
        {%- if score > ns.score -%}
            {%- set ns.best = choice -%}
            {%- set ns.score = score -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(" (did you mean '" ~ ns.best ~ "'?)" if ns.score >= 0.5 else "") }}
{% endmacro %}

{% macro _rfm_bigrams(word) %}
    {%- set w = (word ~ '') | lower -%}
    {%- set out = [] -%}
    {%- for i in range((w | length) - 1) -%}
        {%- if w[i:i + 2] not in out -%}{%- do out.append(w[i:i + 2]) -%}{%- endif -%}
    {%- endfor -%}
    {%- if not out -%}{%- do out.append(w) -%}{%- endif -%}
    {{ return(out) }}
{% endmacro %}
