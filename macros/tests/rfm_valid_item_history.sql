{#-
  Rows of rfm_item_history that break its invariants: a linking row after the anchor time
  (windows_since_last < 0), or counts that do not nest (1 <= ... window counts ... <= n_all).
-#}
{% test rfm_valid_item_history(model) %}
select *
from {{ model }}
where windows_since_last < 0
   or n_window_1 < 0
   or n_window_1 > n_window_4
   or n_window_4 > n_window_13
   or n_window_13 > n_all
   or n_all < 1
{% endtest %}
