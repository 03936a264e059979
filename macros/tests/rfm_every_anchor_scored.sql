{#-
    rfm_every_anchor_scored: each query anchor of rfm_anchors has exactly one row per model
    version in the tested model (predictions or embeddings). Fails with one row per query anchor
    that has none; duplicates are caught by rfm_primary_key on the grain.
-#}
{% test rfm_every_anchor_scored(model, anchors=none) %}
    {{ return(adapter.dispatch('test_rfm_every_anchor_scored', 'dbt_rfm')(model, anchors)) }}
{% endtest %}

{% macro default__test_rfm_every_anchor_scored(model, anchors) %}
{%- set anchors = anchors if anchors is not none else ref('dbt_rfm', 'rfm_anchors') -%}
with query_anchors as (
    select target_name, entity_id, anchor_time
    from {{ anchors }}
    where role = 'query'
),

scored as (
    select distinct target_name, entity_id, anchor_time
    from {{ model }}
)

select q.*
from query_anchors as q
left join scored as s
    on q.target_name = s.target_name
    and q.entity_id = s.entity_id
    and q.anchor_time = s.anchor_time
where s.target_name is null
{% endmacro %}
