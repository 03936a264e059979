"""Scoring benchmark: dbt end to end, time breakdown, onnxruntime vs torch, FLOPs, memory.

Run ``python -m bench.scoring`` (``--quick`` for a short run); see ``bench/scoring/run.py``.
"""
