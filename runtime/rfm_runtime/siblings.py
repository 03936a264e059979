"""Static binary targets: an in-context readout of the head's logit and the target's rate among
the entity's siblings.

A static target is a column of an entity row that becomes known after the row's time (a flight's
departure delay). Its siblings are the other rows that share a parent with it (same origin
airport, same plane, same carrier) in the hours or days before the anchor. The warehouse counts,
per foreign key and window, those whose label was already known, how many were positive, and
how many were not known yet (``SIBLING_HISTORY``, the ``rfm_sibling_history`` model). The
prediction is a logistic readout

    logit = w_head * head_logit + sum_f w_f * feature_f + b

with three features per (link, window): the siblings' positive rate (shrunk towards the
context's rate when few are known), ``log1p`` of how many are known, and the share not known
yet. It is fitted at scoring time on the labelled context anchors with an L2 penalty, the head's
logits cross-fitted (each half of the context predicted from the other half). Decision 0008 has
the measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rfm_runtime.readout import (
    MIN_FIT_ANCHORS,
    HeadPredict,
    cross_fit,
    gather,
    logistic,
    logit,
    sigmoid,
)
from rfm_runtime.tokenize import AnchorKey, anchor_keys

#: The features per (link, window), in order.
SLOT_TERMS = ("rate", "log_known", "pending_share")
#: Pseudo-count of the shrinkage of a sibling rate towards the context's rate.
RATE_PRIOR = 1.0
#: L2 penalty on the standardised weights (not the bias), against the summed log-loss.
READOUT_L2 = 10.0


class SiblingHistory:
    """A static binary target's sibling history (``SIBLING_HISTORY`` rows) by anchor.

    ``slots`` are the (link, window) pairs present, sorted; an anchor without a row for a slot
    had no sibling there.
    """

    def __init__(self, table: pa.Table) -> None:
        links = table.column("link").to_pylist()
        windows = table.column("window_length").to_pylist()
        self.slots: list[tuple[str, int]] = sorted(set(zip(links, windows, strict=True)))
        index = {s: j for j, s in enumerate(self.slots)}
        counts = np.stack(
            [
                np.asarray(table.column(c).to_numpy(), np.float64)
                for c in ("n_known", "label_sum", "n_pending")
            ],
            axis=1,
        )
        self.rows: dict[AnchorKey, np.ndarray] = {}
        for key, link, window, row in zip(anchor_keys(table), links, windows, counts, strict=True):
            slots = self.rows.setdefault(key, np.zeros((len(self.slots), 3)))
            slots[index[(link, window)]] = row

    @property
    def terms(self) -> list[str]:
        """Feature names, in column order of :meth:`features`."""
        return [f"{link}@{w}:{t}" for link, w in self.slots for t in SLOT_TERMS]

    def features(self, keys: Sequence[AnchorKey], base_rate: float) -> np.ndarray:
        """``float64[len(keys), 3 * len(slots)]``: per slot, the shrunk rate, ``log1p`` of the
        known siblings and the share not known yet."""
        counts = gather(self.rows, keys, (len(self.slots), 3))
        known, positive, pending = counts[..., 0], counts[..., 1], counts[..., 2]
        rate = (positive + RATE_PRIOR * base_rate) / (known + RATE_PRIOR)
        seen = known + pending
        share = np.divide(pending, seen, out=np.zeros_like(seen), where=seen > 0)
        return np.stack([rate, np.log1p(known), share], axis=2).reshape(len(keys), -1)


@dataclass(frozen=True)
class BinaryReadout:
    """The fitted readout. ``weights`` = ``[head, *features, bias]`` on features standardised by
    ``mean`` and ``scale`` (head first)."""

    weights: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def probability(self, features: np.ndarray, head: np.ndarray) -> np.ndarray:
        """``float64[Q]`` P(label) from the sibling ``features [Q, F]`` and the head's
        probabilities ``[Q]``."""
        x = (np.concatenate([logit(head)[:, None], features], axis=1) - self.mean) / self.scale
        return sigmoid(x @ self.weights[:-1] + self.weights[-1])


def fit_binary_readout(
    head_predict: HeadPredict, context: np.ndarray, labels: np.ndarray, features: np.ndarray
) -> BinaryReadout | None:
    """Fit the readout on the context anchors; None (the head alone) below
    ``MIN_FIT_ANCHORS`` anchors or when the context holds one class only.

    Args:
        head_predict: the head's P(label) of queries from a labelled context.
        context: ``float32[M, d]`` embeddings of the labelled context anchors.
        labels: ``float64[M]`` their 0/1 labels.
        features: ``float64[M, F]`` their sibling features.
    """
    m = len(labels)
    if m < MIN_FIT_ANCHORS or labels.min() == labels.max():
        return None
    head = cross_fit(m, lambda out, fit: head_predict(context[out], context[fit], labels[fit]))
    x = np.concatenate([logit(head)[:, None], features], axis=1)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    return BinaryReadout(logistic((x - mean) / scale, labels, READOUT_L2 / m), mean, scale)
