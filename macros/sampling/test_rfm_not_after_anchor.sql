{#-
    rfm_not_after_anchor: no sampled row beyond hop 0 is later than its anchor time.

    Applies to models with columns hop and rel_days (row time - anchor_time in days, null for
    static rows), such as rfm_cells. Fails with one row per offending cell. Hop 0, the entity
    row itself, is exempt: it is the anchor's own row (docs/sampling.md).
-#}
{% test rfm_not_after_anchor(model, column_name='rel_days') %}
select *
from {{ model }}
where hop > 0 and {{ column_name }} > 0
{% endtest %}
