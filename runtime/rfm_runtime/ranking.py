"""Ranking (link prediction) from list labels: per-candidate head runs and an in-context readout.

A ranking target labels each context anchor with the list of items it linked to in the
window (``LIST_DISTINCT``). The candidates are the items most often seen in the context
lists. A query's score for an item is a logistic readout (:class:`RankingReadout`) over:

* the entity's history with the item (:class:`ItemHistory`, from the ``rfm_item_history``
  table the warehouse builds with time travel): how often the aggregated model's rows linked
  the entity to the item in the last 1, 4 and 13 label windows and in all time before the
  anchor, and how recently (for "next destinations": how often and how lately the plane flew
  there). The net's embedding cannot say *which* items an entity linked to;
* ``base``: the item's log-odds in the context lists (its popularity);
* ``head``: the head's logit, run as a binary task per candidate ("is this item in the list?").

The readout's weights are fitted on the context anchors at scoring time (logistic regression
on every (context anchor, candidate) pair), with the head's logits cross-fitted (each half of
the context scored against the other half), so items an entity never linked to (new items)
are ranked by the head and the base rate. Items are ordered by the readout's probability:
``predicted_class`` is the best, ``class_scores`` the top k. Decisions 0005 and 0006 have the
reasons and the ablations.

Anchors whose label is a number (0/1 relevance per (entity, candidate) anchor) are scored as
plain binary instead (see ``rfm_runtime.labels``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from rfm_runtime.errors import RfmError
from rfm_runtime.labels import ContextLabels, Decoded
from rfm_runtime.readout import MIN_FIT_ANCHORS, cross_fit, logistic, logit, sigmoid
from rfm_runtime.tokenize import AnchorKey, anchor_keys

#: Most candidate items scored per query (one head run each).
MAX_CANDIDATES = 64
#: L2 penalty of the readout's logistic fit (per pair, on the weights, not the bias).
READOUT_L2 = 1e-3


ClassProbs = Callable[[np.ndarray, np.ndarray, ContextLabels], np.ndarray]


#: The readout's history terms, per (anchor, candidate), from an ``ITEM_HISTORY`` table:
#: ``log1p`` of the counts, and ``exp(-windows_since_last)`` (0 for items never linked).
HISTORY_TERMS = ("n_window_1", "n_window_4", "n_window_13", "n_all", "recency")
#: The readout's weights, in order.
READOUT_TERMS = (*HISTORY_TERMS, "base", "head", "bias")
#: The readout's inputs per (query, candidate) a ranking tree head reads, and its score.
PAIR_INPUTS = (*READOUT_TERMS[:-1], "score")


class ItemHistory:
    """A ranking target's item history (``ITEM_HISTORY`` rows) by anchor, as readout features."""

    def __init__(self, table: pa.Table | None = None) -> None:
        self.rows: dict[AnchorKey, list[tuple[str, np.ndarray]]] = {}
        if table is None or table.num_rows == 0:
            return
        counts = np.stack(
            [np.asarray(table.column(t).to_numpy(), np.float64) for t in HISTORY_TERMS[:-1]],
            axis=1,
        )
        since = np.asarray(table.column("windows_since_last").to_numpy(), np.float64)
        feats = np.concatenate([np.log1p(counts), np.exp(-since)[:, None]], axis=1)
        keys = anchor_keys(table)
        for key, item, f in zip(keys, table.column("item").to_pylist(), feats, strict=True):
            self.rows.setdefault(key, []).append((item, f))

    def features(self, keys: Sequence[AnchorKey], items: Sequence[str]) -> np.ndarray:
        """``float64[len(keys), C, len(HISTORY_TERMS)]``, zeros where an anchor has no row."""
        col = {item: c for c, item in enumerate(items)}
        out = np.zeros((len(keys), len(items), len(HISTORY_TERMS)))
        for r, key in enumerate(keys):
            for item, f in self.rows.get(key, ()):
                c = col.get(item)
                if c is not None:
                    out[r, c] = f
        return out


def is_list_labels(labels: Sequence[Any]) -> bool:
    """True when the labels are lists of items (a LIST_DISTINCT ranking target)."""
    return any(isinstance(v, list | tuple) for v in labels if v is not None)


@dataclass(frozen=True)
class RankingLabels:
    """The labelled context of a ranking target.

    Attributes:
        keep: ``bool[N]`` rows with a (possibly empty) list label.
        items: the C candidate items, most frequent first.
        relevance: ``int64[M, C]`` 1 where the kept row's list holds the item.
    """

    keep: np.ndarray
    items: tuple[str, ...]
    relevance: np.ndarray

    def for_item(self, c: int, rows: np.ndarray | None = None) -> ContextLabels:
        """Binary labels of the kept rows (or of ``rows`` of them) for candidate ``c``."""
        classes = self.relevance[:, c] if rows is None else self.relevance[rows, c]
        ones = np.ones(len(classes), dtype=bool)
        zeros = np.zeros(len(classes), np.float32)
        return ContextLabels("binary", ones, classes, zeros, 2)


def prepare_ranking(labels: Sequence[Any], max_candidates: int = MAX_CANDIDATES) -> RankingLabels:
    """Candidates and per-candidate relevance of list labels.

    Raises:
        RfmError: when no context anchor has a non-empty list.
    """
    keep = np.array([v is not None for v in labels], dtype=bool)
    lists = [[str(i) for i in v] for v in labels if v is not None]
    counts = Counter(i for items in lists for i in set(items))
    if not counts:
        raise RfmError("no labelled context anchors for the ranking target (all lists empty)")
    items = tuple(i for i, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    items = items[:max_candidates]
    index = {i: c for c, i in enumerate(items)}
    relevance = np.zeros((len(lists), len(items)), np.int64)
    for r, row in enumerate(lists):
        for i in row:
            if i in index:
                relevance[r, index[i]] = 1
    return RankingLabels(keep, items, relevance)


def head_logits(
    class_probs: ClassProbs,
    query: np.ndarray,
    context: np.ndarray,
    labels: RankingLabels,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """``float64[Q, C]`` the head's logit of "item in the query's list", per candidate.

    Args:
        class_probs: ``RfmSession.class_probs``.
        query: ``float32[Q, d]``.
        context: ``float32[M, d]`` embeddings of the kept context rows (or of ``rows``).
        labels: the ranking context.
        rows: the kept rows ``context`` holds, when a subset (cross-fitting).
    """
    logits = np.zeros((query.shape[0], len(labels.items)))
    for c in range(len(labels.items)):
        p = class_probs(query, context, labels.for_item(c, rows))[:, 1].astype(np.float64)
        logits[:, c] = logit(p)
    return logits


@dataclass(frozen=True)
class RankingReadout:
    """The logistic readout of a ranking target (see the module docstring).

    Attributes:
        weights: ``float64[len(READOUT_TERMS)]``, in that order.
        base: ``float64[C]`` the candidates' log-odds in the context lists.
    """

    weights: np.ndarray
    base: np.ndarray

    def inputs(self, history: np.ndarray, head: np.ndarray) -> dict[str, np.ndarray]:
        """The pair terms and ``score``, P(item in the list), by name (:data:`PAIR_INPUTS`),
        ``float64[Q, C]`` each, from the history features ``[Q, C, H]`` and the head's logits
        ``[Q, C]``; the tree head of a ranking target reads them."""
        x = _pair_features(history, self.base, head)
        score = sigmoid(x @ self.weights[:-1] + self.weights[-1])
        return {n: x[..., j] for j, n in enumerate(READOUT_TERMS[:-1])} | {"score": score}


def _pair_features(history: np.ndarray, base: np.ndarray, head: np.ndarray) -> np.ndarray:
    """``float64[Q, C, len(READOUT_TERMS) - 1]``: history terms, base, head."""
    base = np.broadcast_to(base[None, :, None], (*head.shape, 1))
    return np.concatenate([history, base, head[..., None]], axis=-1)


def fit_readout(
    class_probs: ClassProbs, context: np.ndarray, labels: RankingLabels, history: np.ndarray
) -> RankingReadout:
    """Fit the readout on the context anchors: every (anchor, candidate) pair is a binary
    example; the head's logits are cross-fitted over two halves (even / odd rows).

    Args:
        class_probs: ``RfmSession.class_probs``.
        context: ``float32[M, d]`` embeddings of the kept context rows.
        labels: the ranking context.
        history: ``float64[M, C, H]`` history features of the kept context rows.
    """
    m = context.shape[0]
    rate = (labels.relevance.sum(axis=0) + 0.5) / (m + 1.0)
    base = logit(rate)
    if m < MIN_FIT_ANCHORS:
        return RankingReadout(np.array([0.0] * (len(READOUT_TERMS) - 2) + [1.0, 0.0]), base)
    head = cross_fit(
        m, lambda out, fit: head_logits(class_probs, context[out], context[fit], labels, fit)
    )
    x = _pair_features(history, base, head).reshape(m * len(labels.items), -1)
    y = labels.relevance.reshape(-1).astype(np.float64)
    return RankingReadout(logistic(x, y, READOUT_L2), base)


def decode_ranking(
    items: Sequence[str],
    scores: np.ndarray,
    top_k: int,
    inputs: dict[str, np.ndarray] | None = None,
) -> Decoded:
    """Top ``top_k`` of the candidate ``items`` per query by ``scores [Q, C]``, best first, with
    their scores (and the readout's pair ``inputs``, kept for the tree head)."""
    q = scores.shape[0]
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
    top: list[list[dict[str, object]] | None] = [
        [{"class": items[j], "score": float(scores[i, j])} for j in order[i]] for i in range(q)
    ]
    best: list[str | None] = [items[order[i, 0]] for i in range(q)]
    nan = np.full(q, np.nan)
    return Decoded(nan, nan, best, top, inputs or {}, tuple(items))
