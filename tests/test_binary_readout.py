"""The static binary readout: a target's sibling history by anchor, and its in-context fit."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from rfm_runtime.readout import MIN_FIT_ANCHORS
from rfm_runtime.schema import SIBLING_HISTORY
from rfm_runtime.siblings import RATE_PRIOR, SiblingHistory, fit_binary_readout
from rfm_runtime.tokenize import time_us

from bench.accuracy.metrics import auroc

T0 = dt.datetime(2013, 5, 1)


def _table(rows: list[tuple[str, str, int, int, float, int]], column: str = "") -> pa.Table:
    """Rows (entity_id, link, window_length, n_known, value_sum, n_pending) of ``column``."""
    names = ["entity_id", "link", "window_length", "n_known", "value_sum", "n_pending"]
    cols = dict(zip(names, map(list, zip(*rows, strict=True)), strict=True))
    extra = {"anchor_time": [T0] * len(rows), "column_name": [column] * len(rows)}
    return pa.table({**cols, **extra}).select(SIBLING_HISTORY.names).cast(SIBLING_HISTORY)


def test_sibling_features_by_anchor() -> None:
    table = _table(
        [
            ("f1", "origin", 3, 4, 3.0, 2),
            ("f1", "origin", 24, 10, 5.0, 2),
            ("f2", "tailnum", 3, 0, 0.0, 1),
        ]
    )
    history = SiblingHistory(table)
    assert history.slots == [("origin", 3), ("origin", 24), ("tailnum", 3)]
    t = int(time_us(pa.array([T0]))[0])
    got = history.features([("f2", t), ("f9", t), ("f1", t)], base_rate=0.2)
    base = 0.2  # no known sibling: the context's rate
    assert got.shape == (3, 9)
    np.testing.assert_allclose(got[0], [base, 0, 0, base, 0, 0, base, 0, 1.0])
    np.testing.assert_allclose(got[1], [base, 0, 0, base, 0, 0, base, 0, 0])
    rate3 = (3 + RATE_PRIOR * base) / (4 + RATE_PRIOR)
    rate24 = (5 + RATE_PRIOR * base) / (10 + RATE_PRIOR)
    want = [rate3, np.log1p(4), 2 / 6, rate24, np.log1p(10), 2 / 12, base, 0, 0]
    np.testing.assert_allclose(got[2], want)


def test_outcome_means_by_anchor() -> None:
    """An outcome column's rows (decision 0017) add one feature per (link, window, column): the
    signed log1p of the known siblings' mean, shrunk towards the column's mean over every known
    sibling of the table; the label's features are unchanged."""
    label = _table([("f1", "origin", 3, 4, 3.0, 2), ("f2", "origin", 3, 1, 0.0, 0)])
    delay = _table(
        [
            ("f1", "origin", 3, 4, 80.0, 2),
            ("f2", "origin", 3, 0, 0.0, 3),
            ("f3", "tailnum", 3, 2, -4.0, 0),
        ],
        column="dep_delay",
    )
    history = SiblingHistory(pa.concat_tables([delay, label]))
    assert history.slots == [("origin", 3)]
    assert history.outcomes == [("origin", 3, "dep_delay"), ("tailnum", 3, "dep_delay")]
    assert history.terms[3:] == ["origin@3:dep_delay_mean", "tailnum@3:dep_delay_mean"]
    t = int(time_us(pa.array([T0]))[0])
    got = history.features([("f1", t), ("f2", t), ("f3", t), ("f9", t)], base_rate=0.5)
    pooled = (80.0 - 4.0) / 6  # every known sibling's delay, over all links and windows
    f1_origin = (80.0 + RATE_PRIOR * pooled) / (4 + RATE_PRIOR)
    f3_tail = (-4.0 + RATE_PRIOR * pooled) / (2 + RATE_PRIOR)
    want = np.log1p(np.abs([[f1_origin, pooled], [pooled, pooled], [pooled, f3_tail]]))
    want *= np.sign([[f1_origin, pooled], [pooled, pooled], [pooled, f3_tail]])
    np.testing.assert_allclose(got[:3, 3:], want)
    np.testing.assert_allclose(got[3, 3:], np.log1p(pooled))  # no row at all: the pooled mean
    np.testing.assert_allclose(got[0, :3], [(3 + 0.5) / 5, np.log1p(4), 2 / 6])


def _context(m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings, sibling features and labels where the label follows the first feature (a
    sibling rate) through a logistic link; the other features are noise."""
    rng = np.random.default_rng(seed)
    features = rng.uniform(size=(m, 6))
    p = 1 / (1 + np.exp(-(6 * features[:, 0] - 3)))
    labels = (rng.uniform(size=m) < p).astype(np.float64)
    return rng.normal(size=(m, 8)).astype(np.float32), features, labels


def _flat_head(query: np.ndarray, context: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.full(len(query), float(labels.mean()))


def _memorising_head(query: np.ndarray, context: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The label of an identical context row (as a confident probability), else the mean:
    perfect in sample."""
    same = np.abs(query[:, None, :] - context[None, :, :]).sum(-1) == 0
    known = np.where(labels[same.argmax(1)] > 0, 0.99, 0.01)
    return np.where(same.any(1), known, labels.mean())


def test_readout_learns_the_rate_the_label_follows() -> None:
    emb, features, labels = _context(600)
    readout = fit_binary_readout(_flat_head, emb, labels, features)
    assert readout is not None
    w = readout.weights[1:-1]  # [head, *features, bias]
    assert w[0] > 0.5 and np.all(np.abs(w[1:]) < 0.3 * w[0])
    q_emb, q_features, q_labels = _context(400, seed=5)
    prob = readout.probability(q_features, _flat_head(q_emb, emb, labels))
    assert auroc(q_labels, prob) > 0.75
    assert np.all((prob > 0) & (prob < 1))


def test_readout_cross_fits_the_head() -> None:
    """A head that memorises its context is perfect in sample and uninformative out of it:
    fitted in sample it would take the weight from the sibling rate."""
    emb, features, labels = _context(600, seed=1)
    readout = fit_binary_readout(_memorising_head, emb, labels, features)
    assert readout is not None
    head, rate = readout.weights[0], readout.weights[1]
    assert abs(head) < 0.3 and rate > 0.5


def test_tiny_or_one_class_context_keeps_the_head() -> None:
    emb, features, labels = _context(MIN_FIT_ANCHORS - 1)
    assert fit_binary_readout(_flat_head, emb, labels, features) is None
    emb, features, _ = _context(50)
    assert fit_binary_readout(_flat_head, emb, np.ones(50), features) is None
