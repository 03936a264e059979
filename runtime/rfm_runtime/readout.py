"""What the in-context readouts share (``ranking``, ``history``, ``siblings``): cross-fitting the
head over two halves of the context, and an L2-penalised logistic regression.

Each readout weighs the head's output against a history built in the warehouse, with weights
fitted on the labelled context anchors at scoring time. In sample the head looks better than
it is (it has seen those labels), so its outputs for the context are cross-fitted: each half
(even / odd rows) is predicted from the other half.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from rfm_runtime.tokenize import AnchorKey

#: Fewer context anchors than this: a readout keeps the head alone (no fit).
MIN_FIT_ANCHORS = 8

#: ``(query embeddings, context embeddings, context labels) -> predictions``.
HeadPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def cross_fit(m: int, predict: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Predictions for context rows ``0..m-1``: ``predict(out, fit)`` gives the rows ``out`` of
    one half from the rows ``fit`` of the other (both index arrays)."""
    half = np.arange(m) % 2
    result: np.ndarray | None = None
    for f in (0, 1):
        fit, out = np.flatnonzero(half != f), np.flatnonzero(half == f)
        pred = np.asarray(predict(out, fit), np.float64)
        if result is None:
            result = np.zeros((m, *pred.shape[1:]))
        result[out] = pred
    assert result is not None
    return result


def gather(
    rows: Mapping[AnchorKey, np.ndarray], keys: Sequence[AnchorKey], shape: tuple[int, ...]
) -> np.ndarray:
    """``float64[len(keys), *shape]``: each anchor's history row, zeros for one without."""
    out = np.zeros((len(keys), *shape))
    for r, key in enumerate(keys):
        row = rows.get(key)
        if row is not None:
            out[r] = row
    return out


def logistic(x: np.ndarray, y: np.ndarray, l2: float, iters: int = 25) -> np.ndarray:
    """``float64[F + 1]`` weights and bias of a logistic regression of ``y`` (0/1) on ``x``
    minimising the mean log-loss plus ``l2 * |w|^2 / 2`` (bias not penalised), by Newton's
    method."""
    xb = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    pen = np.full(xb.shape[1], l2)
    pen[-1] = 0.0
    w = np.zeros(xb.shape[1])
    for _ in range(iters):
        p = sigmoid(xb @ w)
        grad = xb.T @ (p - y) / len(y) + pen * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb / len(y) + np.diag(pen) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function (no overflow for large ``|z|``)."""
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)), np.float64)


def logit(p: np.ndarray) -> np.ndarray:
    """``log(p / (1 - p))``, with ``p`` clipped to ``[1e-6, 1 - 1e-6]``."""
    p = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p / (1 - p)), np.float64)
