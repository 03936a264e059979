"""Sampling benchmark: SQL sampler vs in-process sampler vs a per-hop query loop."""
