"""The time split: the latest labelled anchors validate, the earlier ones train.

Anchors sharing an anchor time always land on the same side, so every validation anchor is
strictly later than every training anchor.
"""

from __future__ import annotations

import numpy as np

from dbt_rfm.errors import RfmError


def subsample(n: int, k: int, seed: int) -> np.ndarray:
    """Indices (int64, ascending) of at most ``k`` of ``n`` rows: all of them, or a seeded
    sample (the labelled anchors fine-tuning reads, ``FinetuneConfig.max_anchors``)."""
    if n <= k:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False)).astype(np.int64)


def split_by_time(
    anchor_us: np.ndarray, val_fraction: float, what: str = "target"
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the training and validation anchors.

    The cut is the earliest anchor time ``c`` such that the anchors at or after ``c`` are at
    most ``val_fraction`` of all (at least one distinct time is held out).

    Args:
        anchor_us: ``int64[A]`` anchor times, microseconds since the epoch.
        val_fraction: target share of validation anchors, in (0, 1).
        what: named in errors (the target).

    Returns:
        ``(train int64[T], val int64[V])``, each in ascending row order; ``T + V = A``.

    Raises:
        RfmError: when the anchors have fewer than two distinct times (no split is possible).
    """
    times = np.asarray(anchor_us, np.int64)
    distinct = np.unique(times)
    if len(distinct) < 2:
        raise RfmError(
            f"finetune: {what}: the labelled context anchors have {len(distinct)} distinct "
            "anchor time(s); a time split needs at least 2 (widen anchors.spine)"
        )
    # share of anchors at or after each distinct time
    at_or_after = 1.0 - np.searchsorted(np.sort(times), distinct, side="left") / len(times)
    ok = np.flatnonzero(at_or_after <= val_fraction)
    cut = distinct[ok[0]] if len(ok) else distinct[-1]
    cut = max(cut, distinct[1])  # keep at least one time for training
    val = times >= cut
    return np.flatnonzero(~val), np.flatnonzero(val)


def as_slice(rows: np.ndarray) -> slice | np.ndarray:
    """``rows`` (ascending indices) as a slice when they are one contiguous run, so that
    indexing an array with them gives a view rather than a copy; else ``rows`` unchanged."""
    if len(rows) and int(rows[-1]) - int(rows[0]) + 1 == len(rows):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows
