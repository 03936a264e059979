"""Metrics of the accuracy benchmark, in numpy only (no scikit-learn here).

* :func:`auroc` for binary tasks (ties get mid-ranks, so a constant score gives 0.5);
* :func:`mae` for regression tasks;
* :func:`map_at_k` for ranking tasks (mean average precision at k over entities);
* :func:`paired_gap`: the metric of one arm minus another's on the same rows, with a paired
  bootstrap interval (1,000 test rows leave a gap of 1-2 AUROC points within noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dbt_rfm.errors import RfmError


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve, via the Mann-Whitney U statistic with mid-ranks for ties.

    Args:
        labels: bool or {0, 1} ``[N]``.
        scores: float ``[N]``; higher means more likely positive. NaN is not allowed.

    Returns:
        The probability that a random positive scores above a random negative (ties count 1/2).

    Raises:
        RfmError: when lengths differ, scores contain NaN, or one class is absent.
    """
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise RfmError(f"auroc: {y.size} labels but {s.size} scores")
    if np.isnan(s).any():
        raise RfmError("auroc: scores contain NaN")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise RfmError(f"auroc needs both classes; found {n_pos} positives, {n_neg} negatives")
    ranks = _mid_ranks(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _mid_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of float ``[N]``, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # Start index of each run of equal values, and the run each sorted element belongs to.
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], x.size]
    run_rank = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    run_of = np.repeat(np.arange(starts.size), ends - starts)
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = run_rank[run_of]
    return ranks


def mae(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Mean absolute error of float ``[N]`` predictions against float ``[N]`` labels."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.asarray(predictions, dtype=np.float64).ravel()
    if y.shape != p.shape or y.size == 0:
        raise RfmError(f"mae: {y.size} labels but {p.size} predictions (need equal, non-zero)")
    return float(np.abs(y - p).mean())


def average_precision_at_k(relevant: Sequence[str], ranked: Sequence[str], k: int) -> float:
    """AP@k of one ranked list: mean over hits of precision at the hit, divided by min(|rel|, k).

    An entity with no relevant items scores 0 (callers normally drop such entities). Items
    repeated in ``ranked`` count once, at their first place.
    """
    rel = set(relevant)
    if not rel:
        return 0.0
    seen: set[str] = set()
    hits = 0
    total = 0.0
    for i, item in enumerate(ranked[:k]):
        if item in seen:
            continue
        seen.add(item)
        if item in rel:
            hits += 1
            total += hits / (i + 1)
    return total / min(len(rel), k)


def map_at_k(relevant: Sequence[Sequence[str]], ranked: Sequence[Sequence[str]], k: int) -> float:
    """Mean of :func:`average_precision_at_k` over entities (lists of equal length ``N``)."""
    if len(relevant) != len(ranked) or not relevant:
        raise RfmError(f"map_at_k: {len(relevant)} label lists but {len(ranked)} rankings")
    if k < 1:
        raise RfmError(f"map_at_k: k must be >= 1, found {k}")
    return float(
        np.mean([average_precision_at_k(r, p, k) for r, p in zip(relevant, ranked, strict=True)])
    )


def paired_gap(
    kind: str,
    labels: Sequence[Any],
    a: object,
    b: object,
    k: int,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``metric(a) - metric(b)`` on the same rows and its 95% paired-bootstrap interval.

    Each resample draws the rows with replacement and scores both arms on the same draw, so
    what the two arms share (an easy or hard draw) cancels out.

    Args:
        kind: ``binary`` (AUROC), ``regression`` (MAE) or ``ranking`` (MAP@k).
        labels: the labels, as for the metric; a, b: the two arms' predictions.
        k: the cutoff of MAP@k (ranking only).

    Returns:
        ``(gap, low, high)``.
    """
    draws = np.random.default_rng(seed).integers(0, len(labels), size=(resamples, len(labels)))
    if kind == "binary":
        y = np.asarray(labels).astype(bool).ravel()
        pa_, pb = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
        gap = auroc(y, pa_) - auroc(y, pb)
        gaps = np.array([auroc(y[d], pa_[d]) - auroc(y[d], pb[d]) for d in draws])
    else:
        rows = _per_row(kind, labels, a, k) - _per_row(kind, labels, b, k)
        gap, gaps = float(rows.mean()), rows[draws].mean(axis=1)
    low, high = np.percentile(gaps, [2.5, 97.5])
    return float(gap), float(low), float(high)


def _per_row(kind: str, labels: object, predictions: object, k: int) -> np.ndarray:
    """The rows' terms of the metric's mean: absolute errors, or AP@k."""
    if kind == "regression":
        y = np.asarray(labels, np.float64).ravel()
        return np.abs(y - np.asarray(predictions, np.float64).ravel())
    if kind == "ranking":
        pairs = zip(labels, predictions, strict=True)  # type: ignore[call-overload]
        return np.array([average_precision_at_k(r, p, k) for r, p in pairs])
    raise RfmError(f"paired_gap: unknown task kind '{kind}'")


#: Metric name -> whether larger is better; used by the tuner and the report.
HIGHER_IS_BETTER = {"auroc": True, "mae": False, "map@5": True}
