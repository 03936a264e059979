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
yet; and one per (link, window, outcome column): the known siblings' mean of a number or
boolean column known after the row time (a delay, a cancellation; decision 0017). It is
fitted at scoring time on the labelled context anchors with an L2 penalty, the head's logits
cross-fitted (each half of the context predicted from the other half). Decisions 0008 and 0017
have the measurements.
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

    ``slots`` are the (link, window) pairs of the label's rows, sorted; ``outcomes`` the (link,
    window, column) triples of the outcome columns' rows (decision 0017), sorted. An anchor
    without a row for a slot had no sibling there.
    """

    def __init__(self, table: pa.Table) -> None:
        triples = list(
            zip(
                *(table.column(c).to_pylist() for c in ("link", "window_length", "column_name")),
                strict=True,
            )
        )
        self.slots: list[tuple[str, int]] = sorted({(k, w) for k, w, c in triples if not c})
        self.outcomes: list[tuple[str, int, str]] = sorted({t for t in triples if t[2]})
        index = {(k, w, ""): j for j, (k, w) in enumerate(self.slots)}
        index |= {t: len(self.slots) + j for j, t in enumerate(self.outcomes)}
        slot = np.array([index[t] for t in triples], np.int64)
        counts = np.stack(
            [
                np.asarray(table.column(c).to_numpy(), np.float64)
                for c in ("n_known", "value_sum", "n_pending")
            ],
            axis=1,
        )
        keys: dict[AnchorKey, int] = {}
        anchor = np.array([keys.setdefault(k, len(keys)) for k in anchor_keys(table)], np.int64)
        dense = np.zeros((len(keys), len(index), 3))
        dense[anchor, slot] = counts
        self.rows: dict[AnchorKey, np.ndarray] = dict(zip(keys, dense, strict=True))
        # each outcome column's mean over every known sibling: what an empty slot reads
        per_slot = np.zeros((len(index), 2))
        np.add.at(per_slot, slot, counts[:, :2])
        columns = np.array([c for _, _, c in self.outcomes])
        self.pooled = np.zeros(len(self.outcomes))
        for column in set(columns):
            mine = columns == column
            known, total = per_slot[len(self.slots) :][mine].sum(axis=0)
            self.pooled[mine] = total / known if known else 0.0

    @property
    def terms(self) -> list[str]:
        """Feature names, in column order of :meth:`features`."""
        return [f"{link}@{w}:{t}" for link, w in self.slots for t in SLOT_TERMS] + [
            f"{link}@{w}:{column}_mean" for link, w, column in self.outcomes
        ]

    def features(self, keys: Sequence[AnchorKey], base_rate: float) -> np.ndarray:
        """``float64[len(keys), 3 * len(slots) + len(outcomes)]``: per slot, the shrunk rate,
        ``log1p`` of the known siblings and the share not known yet; per outcome, the signed
        ``log1p`` of the known siblings' mean of the column, shrunk towards its pooled mean."""
        counts = gather(self.rows, keys, (len(self.slots) + len(self.outcomes), 3))
        label, outcome = counts[:, : len(self.slots)], counts[:, len(self.slots) :]
        known, positive, pending = label[..., 0], label[..., 1], label[..., 2]
        rate = (positive + RATE_PRIOR * base_rate) / (known + RATE_PRIOR)
        seen = known + pending
        share = np.divide(pending, seen, out=np.zeros_like(seen), where=seen > 0)
        rates = np.stack([rate, np.log1p(known), share], axis=2).reshape(len(keys), -1)
        mean = (outcome[..., 1] + RATE_PRIOR * self.pooled) / (outcome[..., 0] + RATE_PRIOR)
        return np.concatenate([rates, np.sign(mean) * np.log1p(np.abs(mean))], axis=1)


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
