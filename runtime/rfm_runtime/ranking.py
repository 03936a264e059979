"""Ranking (link prediction) from list labels: one binary head run per candidate item.

A ranking target labels each context anchor with the list of items it linked to in the
window (``LIST_DISTINCT``). The candidates are the items most often seen in the context
lists; for each candidate the head runs as a binary task ("is this item in the list?") and the
query's score for the item is P(yes). Items are then ordered by score: ``predicted_class``
is the best, ``class_scores`` the top k.

Anchors whose label is a number (0/1 relevance per (entity, candidate) anchor) are scored as
plain binary instead (see ``rfm_runtime.labels``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rfm_runtime.errors import RfmError
from rfm_runtime.labels import ContextLabels, Decoded

#: Most candidate items scored per query (one head run each).
MAX_CANDIDATES = 64


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

    def for_item(self, c: int) -> ContextLabels:
        """Binary labels of the kept rows for candidate ``c``."""
        classes = self.relevance[:, c]
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


def rank_scores(
    class_probs: Callable[[np.ndarray, np.ndarray, ContextLabels], np.ndarray],
    query: np.ndarray,
    context: np.ndarray,
    labels: RankingLabels,
) -> np.ndarray:
    """``float64[Q, C]`` P(item in the query's list) for every candidate item.

    Args:
        class_probs: ``RfmSession.class_probs``.
        query: ``float32[Q, d]``.
        context: ``float32[M, d]`` embeddings of the kept context rows.
        labels: the ranking context.
    """
    scores = np.zeros((query.shape[0], len(labels.items)))
    for c in range(len(labels.items)):
        scores[:, c] = class_probs(query, context, labels.for_item(c))[:, 1]
    return scores


def decode_ranking(labels: RankingLabels, scores: np.ndarray, top_k: int) -> Decoded:
    """Top ``top_k`` items per query, best first, with their scores."""
    q = scores.shape[0]
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
    items = labels.items
    top: list[list[dict[str, object]] | None] = [
        [{"class": items[j], "score": float(scores[i, j])} for j in order[i]] for i in range(q)
    ]
    best: list[str | None] = [items[order[i, 0]] for i in range(q)]
    nan = np.full(q, np.nan)
    return Decoded(nan, nan, best, top)
