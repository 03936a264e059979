"""Benchmarks of dbt-rfm (accuracy, speed, memory); results are recorded under bench/results."""
