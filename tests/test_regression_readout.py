"""The regression readout: a target's history by anchor, and its in-context L1 fit."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from rfm_runtime.history import (
    HISTORY_TERMS,
    MIN_FIT_ANCHORS,
    READOUT_TERMS,
    RegressionReadout,
    TargetHistory,
    fit_regression_readout,
)
from rfm_runtime.schema import TARGET_HISTORY
from rfm_runtime.tokenize import time_us

T0 = dt.datetime(2013, 5, 1)
HEAD = READOUT_TERMS.index("head")


def test_history_features_by_anchor() -> None:
    table = pa.table(
        {
            "entity_id": ["p1", "p2"],
            "anchor_time": [T0, T0],
            "per_window_1": [3.0, 0.0],
            "per_window_4": [2.5, 1.0],
            "per_window_13": [2.0, 0.5],
        },
        schema=TARGET_HISTORY,
    )
    t = int(time_us(pa.array([T0]))[0])
    got = TargetHistory(table).features([("p2", t), ("p3", t), ("p1", t)])
    assert got.tolist() == [[0.0, 1.0, 0.5], [0.0, 0.0, 0.0], [3.0, 2.5, 2.0]]


def _context(m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings, history and labels where the label is twice the 4-window rate plus noise
    with heavy tails (a least-squares fit would be pulled by them)."""
    rng = np.random.default_rng(seed)
    history = rng.gamma(2.0, 3.0, size=(m, len(HISTORY_TERMS)))
    noise = rng.standard_t(1.5, size=m)
    labels = 2.0 * history[:, 1] + noise
    return rng.normal(size=(m, 8)).astype(np.float32), history, labels


def _flat_head(query: np.ndarray, context: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.full(len(query), float(np.median(labels)))


def _memorising_head(query: np.ndarray, context: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The label of an identical context row, else the median: perfect in sample."""
    same = np.abs(query[:, None, :] - context[None, :, :]).sum(-1) == 0
    return np.where(same.any(1), labels[same.argmax(1)], np.median(labels))


def test_readout_learns_the_rate_the_label_follows() -> None:
    emb, history, labels = _context(400)
    readout = fit_regression_readout(_flat_head, emb, labels, history)
    w = dict(zip(READOUT_TERMS, readout.weights, strict=True))
    assert abs(w["per_window_4"] - 2.0) < 0.1
    assert abs(w["per_window_1"]) < 0.1 and abs(w["per_window_13"]) < 0.1
    _, q_history, q_labels = _context(200, seed=5)
    pred = readout.predict(q_history, _flat_head(q_history, emb, labels))
    assert np.median(np.abs(pred - q_labels)) < np.median(np.abs(q_labels - np.median(q_labels)))


def test_readout_cross_fits_the_head() -> None:
    """A head that memorises its context is perfect in sample and no better than the median
    out of it: fitted in sample it would take all the weight."""
    emb, history, labels = _context(400, seed=1)
    readout = fit_regression_readout(_memorising_head, emb, labels, history)
    assert abs(readout.weights[HEAD]) < 0.2
    assert abs(readout.weights[READOUT_TERMS.index("per_window_4")] - 2.0) < 0.2


def test_tiny_context_predicts_with_the_head_alone() -> None:
    emb, history, labels = _context(MIN_FIT_ANCHORS - 1)
    readout = fit_regression_readout(_flat_head, emb, labels, history)
    assert readout.weights[HEAD] == 1.0 and not np.delete(readout.weights, HEAD).any()
    head = np.array([4.0, -1.5])
    np.testing.assert_allclose(RegressionReadout(readout.weights).predict(history[:2], head), head)
