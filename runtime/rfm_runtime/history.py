"""Regression targets over COUNT or SUM: an in-context readout of the head's prediction and
the entity's own history of the target.

The warehouse builds, per anchor, the target's aggregate over the last 1, 4 and 13 label
windows, per window (``TARGET_HISTORY``, the ``rfm_target_history`` model; nothing later than
the anchor, nothing not yet known). The prediction is a linear readout

    prediction = w_head * head + w_1 * per_window_1 + w_4 * per_window_4 + w_13 * per_window_13 + b

fitted at scoring time on the labelled context anchors by least absolute deviations (the
median, as the head's own decoding), with the head's predictions cross-fitted (each half of
the context predicted from the other half). The net cannot count past its sampler's fan-out
(decision 0004), and a rate over months is what such targets follow; decision 0007 has the
measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rfm_runtime.readout import MIN_FIT_ANCHORS, HeadPredict, cross_fit, gather
from rfm_runtime.tokenize import AnchorKey, anchor_keys

#: The history columns the readout reads, in order.
HISTORY_TERMS = ("per_window_1", "per_window_4", "per_window_13")
#: The readout's weights, in order.
READOUT_TERMS = ("head", *HISTORY_TERMS, "bias")
#: Ridge penalty on the weights (not the bias), relative to the features' scale.
READOUT_L2 = 1e-6


class TargetHistory:
    """A regression target's history (``TARGET_HISTORY`` rows) by anchor."""

    def __init__(self, table: pa.Table) -> None:
        values = np.stack(
            [np.asarray(table.column(t).to_numpy(), np.float64) for t in HISTORY_TERMS], axis=1
        )
        self.rows: dict[AnchorKey, np.ndarray] = dict(zip(anchor_keys(table), values, strict=True))

    def features(self, keys: Sequence[AnchorKey]) -> np.ndarray:
        """``float64[len(keys), len(HISTORY_TERMS)]`` (0 for an anchor without a row: an
        empty COUNT or SUM)."""
        return gather(self.rows, keys, (len(HISTORY_TERMS),))


@dataclass(frozen=True)
class RegressionReadout:
    """The fitted readout; ``weights`` in the order of :data:`READOUT_TERMS`."""

    weights: np.ndarray

    def predict(self, history: np.ndarray, head: np.ndarray) -> np.ndarray:
        """``float64[Q]`` from ``history [Q, H]`` and the head's predictions ``[Q]``."""
        x = np.concatenate([head[:, None], history], axis=1)
        return np.asarray(x @ self.weights[:-1] + self.weights[-1], np.float64)


def fit_regression_readout(
    head_predict: HeadPredict, context: np.ndarray, labels: np.ndarray, history: np.ndarray
) -> RegressionReadout:
    """Fit the readout on the context anchors (least absolute deviations, head cross-fitted).

    Args:
        head_predict: the head's prediction of queries from a labelled context.
        context: ``float32[M, d]`` embeddings of the labelled context anchors.
        labels: ``float64[M]`` their labels.
        history: ``float64[M, H]`` their history.
    """
    m = len(labels)
    if m < MIN_FIT_ANCHORS:
        return RegressionReadout(np.array([1.0] + [0.0] * len(HISTORY_TERMS) + [0.0]))
    head = cross_fit(m, lambda out, fit: head_predict(context[out], context[fit], labels[fit]))
    x = np.concatenate([head[:, None], history, np.ones((m, 1))], axis=1)
    return RegressionReadout(_least_absolute(x, labels))


def _least_absolute(x: np.ndarray, y: np.ndarray, iters: int = 100) -> np.ndarray:
    """Weights minimising ``sum |y - x w|`` by iteratively reweighted least squares (the
    last column of ``x`` is the intercept, not penalised)."""
    scale = float(np.mean(np.abs(y - np.median(y)))) or 1.0
    pen = READOUT_L2 * np.maximum((x**2).mean(axis=0), 1e-12)
    pen[-1] = 0.0
    w = np.linalg.solve(x.T @ x + np.diag(pen) * len(y), x.T @ y)
    for _ in range(iters):
        r = np.maximum(np.abs(y - x @ w), 1e-4 * scale)
        xw = x / r[:, None]
        new = np.linalg.solve(xw.T @ x + np.diag(pen) * np.sum(1 / r), xw.T @ y)
        if np.max(np.abs(new - w)) < 1e-9 * (1 + np.max(np.abs(w))):
            return new
        w = new
    return w
