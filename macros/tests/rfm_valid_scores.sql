{#-
    rfm_valid_scores: every prediction row has scores a consumer can trust.

    Fails with one row per bad prediction: `probability` outside [0, 1], a class score outside
    [0, 1], multiclass class scores (task multiclass in rfm_targets) that do not sum to 1
    (within 1e-4), or a binary/regression row whose `prediction` is null or not finite.
-#}
{% test rfm_valid_scores(model, targets=none) %}
    {{ return(adapter.dispatch('test_rfm_valid_scores', 'dbt_rfm')(model, targets)) }}
{% endtest %}

{% macro default__test_rfm_valid_scores(model, targets) %}
{%- set targets = targets if targets is not none else ref('dbt_rfm', 'rfm_targets') -%}
with predictions as (
    select p.*, t.task
    from {{ model }} as p
    join {{ targets }} as t on p.target_name = t.target_name
),

scores as (
    select
        entity_id, anchor_time, target_name, task, probability, prediction,
        (select min(s.score) from unnest(class_scores) as u(s)) as min_score,
        (select max(s.score) from unnest(class_scores) as u(s)) as max_score,
        (select sum(s.score) from unnest(class_scores) as u(s)) as sum_score
    from predictions
)

select *
from scores
where probability < 0 or probability > 1
   or min_score < 0 or max_score > 1
   or (task = 'multiclass' and abs(sum_score - 1) > 1e-4)
   or (task in ('binary', 'regression') and (prediction is null or not isfinite(prediction)))
{% endmacro %}
