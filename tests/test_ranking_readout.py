"""The ranking readout: item history features, and its in-context logistic fit."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from rfm_runtime.labels import ContextLabels
from rfm_runtime.ranking import (
    HISTORY_TERMS,
    MIN_FIT_ANCHORS,
    READOUT_TERMS,
    ItemHistory,
    RankingReadout,
    fit_readout,
    prepare_ranking,
)
from rfm_runtime.schema import ITEM_HISTORY
from rfm_runtime.tokenize import time_us

T0 = dt.datetime(2013, 5, 1)
HEAD = READOUT_TERMS.index("head")


def test_history_features_by_anchor_and_item() -> None:
    table = pa.table(
        {
            "entity_id": ["p1", "p1", "p2"],
            "anchor_time": [T0] * 3,
            "item": ["LAX", "SFO", "LAX"],
            "n_window_1": [1, 0, 0],
            "n_window_4": [3, 0, 1],
            "n_window_13": [3, 2, 1],
            "n_all": [5, 2, 1],
            "windows_since_last": [0.5, 6.0, 2.0],
        },
        schema=ITEM_HISTORY,
    )
    t = int(time_us(pa.array([T0]))[0])
    got = ItemHistory(table).features([("p1", t), ("p2", t), ("p3", t)], ["LAX", "SFO", "ORD"])
    assert got.shape == (3, 3, len(HISTORY_TERMS))
    np.testing.assert_allclose(got[0, 0], [*np.log1p([1, 3, 3, 5]), np.exp(-0.5)])
    np.testing.assert_allclose(got[0, 1], [*np.log1p([0, 0, 2, 2]), np.exp(-6.0)])
    np.testing.assert_allclose(got[1, 0], [*np.log1p([0, 1, 1, 1]), np.exp(-2.0)])
    assert not got[0, 2].any() and not got[1, 1:].any() and not got[2].any()
    assert not ItemHistory(None).features([("p1", t)], ["LAX"]).any()


def _context(m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Embeddings, history features and list labels where a recently linked item comes back
    80% of the time (history: every term 1 for a linked item)."""
    rng = np.random.default_rng(seed)
    items = ["a", "b", "c", "d", "e"]
    linked = (rng.random((m, len(items))) < 0.3).astype(np.float64)
    back = (linked == 1) & (rng.random(linked.shape) < 0.8) | (rng.random(linked.shape) < 0.05)
    lists = [[i for i, b in zip(items, row, strict=True) if b] for row in back]
    history = np.repeat(linked[:, :, None], len(HISTORY_TERMS), axis=2)
    return rng.normal(size=(m, 8)).astype(np.float32), history, lists


def _flat_head(query: np.ndarray, context: np.ndarray, labels: ContextLabels) -> np.ndarray:
    return np.full((len(query), 2), 0.5, np.float32)


def _memorising_head(query: np.ndarray, context: np.ndarray, labels: ContextLabels) -> np.ndarray:
    """P(yes) = 1 for a query that is a positive context row, else 0: perfect in sample."""
    pos = context[labels.classes == 1]
    hit = (np.abs(query[:, None, :] - pos[None, :, :]).sum(-1) == 0).any(-1) if len(pos) else 0
    p = np.where(hit, 0.999, 0.001)
    return np.stack([1 - p, p], axis=1).astype(np.float32)


def _history_weight(readout: RankingReadout) -> float:
    return float(readout.weights[: len(HISTORY_TERMS)].sum())


def test_readout_learns_that_linked_items_come_back() -> None:
    emb, history, lists = _context(300)
    labels = prepare_ranking(lists)
    order = ["abcde".index(i) for i in labels.items]  # history in the candidates' order
    readout = fit_readout(_flat_head, emb, labels, history[:, order])
    assert _history_weight(readout) > 2.0
    q = np.zeros((1, len(labels.items), len(HISTORY_TERMS)))
    q[0, labels.items.index("d")] = 1.0
    scores = readout.inputs(q, np.zeros(q.shape[:2]))["score"]
    assert labels.items[int(np.argmax(scores[0]))] == "d"
    assert ((scores > 0) & (scores < 1)).all()


def test_readout_cross_fits_the_head() -> None:
    """A head that memorises its context is perfect in sample and useless out of it: the
    fit must see it out of sample (it gets little weight), or it would drown the rest."""
    emb, history, lists = _context(300, seed=1)
    labels = prepare_ranking(lists)
    order = ["abcde".index(i) for i in labels.items]
    readout = fit_readout(_memorising_head, emb, labels, history[:, order])
    assert abs(readout.weights[HEAD]) < 0.3 < _history_weight(readout)


def test_tiny_context_reads_the_head_alone() -> None:
    emb, history, lists = _context(MIN_FIT_ANCHORS - 1)
    labels = prepare_ranking(lists)
    readout = fit_readout(_flat_head, emb, labels, history[:, : len(labels.items)])
    assert readout.weights[HEAD] == 1.0 and np.delete(readout.weights, HEAD).tolist() == [0.0] * (
        len(READOUT_TERMS) - 1
    )
    head = np.array([[2.0, -1.0]])
    expected = 1 / (1 + np.exp(-head))
    flat = RankingReadout(readout.weights, np.zeros(2))
    got = flat.inputs(np.ones((1, 2, len(HISTORY_TERMS))), head)["score"]
    np.testing.assert_allclose(got, expected)
