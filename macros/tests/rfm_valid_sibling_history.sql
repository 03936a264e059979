{#-
  Rows of rfm_sibling_history that break its invariants: negative counts, a label sum outside
  [0, n_known] (the label's rows, column_name empty), or counts that shrink as the window grows
  (per anchor, link and column).
-#}
{% test rfm_valid_sibling_history(model) %}
with ordered as (
    select *,
        lag(n_known) over (partition by target_name, entity_id, anchor_time, link, column_name order by window_length) as shorter_known,
        lag(n_pending) over (partition by target_name, entity_id, anchor_time, link, column_name order by window_length) as shorter_pending
    from {{ model }}
)
select *
from ordered
where n_known < 0
   or n_pending < 0
   or (column_name = '' and (value_sum < 0 or value_sum > n_known))
   or n_known < shorter_known
   or n_pending < shorter_pending
{% endtest %}
