"""The ranking readout: item sightings in the cells, and its in-context logistic fit."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from rfm_runtime.labels import ContextLabels
from rfm_runtime.ranking import (
    MIN_FIT_ANCHORS,
    ItemLinks,
    ItemSightings,
    RankingReadout,
    fit_readout,
    prepare_ranking,
)
from rfm_runtime.schema import CELLS
from rfm_runtime.tokenize import time_us

T0 = dt.datetime(2013, 5, 1)


def _cells(rows: list[tuple[str, str, str, str | None]]) -> pa.Table:
    """CELLS with one cell per ``(entity_id, table_name, row_key, parent_table)``."""
    n = len(rows)
    return pa.table(
        {
            "entity_id": [r[0] for r in rows],
            "anchor_time": [T0] * n,
            "table_name": [r[1] for r in rows],
            "row_key": [r[2] for r in rows],
            "parent_table": [r[3] for r in rows],
            "parent_key": [None if r[3] is None else "f1" for r in rows],
            "hop": [0 if r[3] is None else 2 for r in rows],
            "column_name": ["name"] * n,
            "stype": ["text"] * n,
            "num_value": [None] * n,
            "text_value": ["x"] * n,
            "rel_days": [None] * n,
        },
        schema=CELLS,
    )


def test_sightings_are_item_rows_reached_from_the_aggregated_model() -> None:
    cells = _cells(
        [
            ("p1", "planes", "p1", None),
            ("p1", "airports", "LAX", "flights"),
            ("p1", "airports", "SFO", "flights"),
            ("p1", "airports", "ORD", "weather"),  # reached another way: not a sighting
            ("p1", "carriers", "BOS", "flights"),  # another model: not a sighting
            ("p2", "airports", "LAX", "flights"),
        ]
    )
    tap = ItemSightings(ItemLinks("airports", "flights"))
    passed = pa.Table.from_batches(list(tap.tap(cells.to_batches(max_chunksize=2))))
    assert passed.equals(cells)
    t = int(time_us(pa.array([T0]))[0])
    keys = [("p1", t), ("p2", t), ("p3", t)]
    seen = tap.matrix(keys, ["LAX", "SFO", "ORD", "BOS"])
    assert seen.tolist() == [[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    tap.forget(keys[:1])
    assert tap.matrix(keys, ["LAX"]).tolist() == [[0], [1], [0]]
    blind = ItemSightings(None)
    list(blind.tap(cells.to_batches()))
    assert not blind.matrix(keys, ["LAX"]).any()


def _context(m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Embeddings, sightings and list labels where a seen item comes back 80% of the time."""
    rng = np.random.default_rng(seed)
    items = ["a", "b", "c", "d", "e"]
    seen = (rng.random((m, len(items))) < 0.3).astype(np.float64)
    back = (seen == 1) & (rng.random(seen.shape) < 0.8) | (rng.random(seen.shape) < 0.05)
    lists = [[i for i, b in zip(items, row, strict=True) if b] for row in back]
    return rng.normal(size=(m, 8)).astype(np.float32), seen, lists


def _flat_head(query: np.ndarray, context: np.ndarray, labels: ContextLabels) -> np.ndarray:
    return np.full((len(query), 2), 0.5, np.float32)


def _memorising_head(query: np.ndarray, context: np.ndarray, labels: ContextLabels) -> np.ndarray:
    """P(yes) = 1 for a query that is a positive context row, else 0: perfect in sample."""
    pos = context[labels.classes == 1]
    hit = (np.abs(query[:, None, :] - pos[None, :, :]).sum(-1) == 0).any(-1) if len(pos) else 0
    p = np.where(hit, 0.999, 0.001)
    return np.stack([1 - p, p], axis=1).astype(np.float32)


def test_readout_learns_that_seen_items_come_back() -> None:
    emb, seen, lists = _context(300)
    labels = prepare_ranking(lists)
    order = ["abcde".index(i) for i in labels.items]  # sightings in the candidates' order
    readout = fit_readout(_flat_head, emb, labels, seen[:, order])
    assert readout.weights[0] > 2.0  # seen
    q_seen = np.zeros((1, len(labels.items)))
    q_seen[0, labels.items.index("d")] = 1.0
    scores = readout.scores(q_seen, np.zeros_like(q_seen))
    assert labels.items[int(np.argmax(scores[0]))] == "d"
    assert ((scores > 0) & (scores < 1)).all()


def test_readout_cross_fits_the_head() -> None:
    """A head that memorises its context is perfect in sample and useless out of it: the
    fit must see it out of sample (it gets little weight), or it would drown the rest."""
    emb, seen, lists = _context(300, seed=1)
    labels = prepare_ranking(lists)
    order = ["abcde".index(i) for i in labels.items]  # sightings in the candidates' order
    readout = fit_readout(_memorising_head, emb, labels, seen[:, order])
    assert abs(readout.weights[2]) < 0.3 < readout.weights[0]


def test_tiny_context_reads_the_head_alone() -> None:
    emb, seen, lists = _context(MIN_FIT_ANCHORS - 1)
    labels = prepare_ranking(lists)
    readout = fit_readout(_flat_head, emb, labels, seen[:, : len(labels.items)])
    assert readout.weights.tolist() == [0.0, 0.0, 1.0, 0.0]
    head = np.array([[2.0, -1.0]])
    expected = 1 / (1 + np.exp(-head))
    flat = RankingReadout(readout.weights, np.zeros(2))
    np.testing.assert_allclose(flat.scores(head * 0, head), expected)
