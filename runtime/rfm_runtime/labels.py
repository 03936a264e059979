"""Context labels -> ICL head inputs, and head outputs -> predictions. numpy only.

Every task becomes classification over at most ``max_classes`` classes:

* binary: classes 0/1;
* multiclass: classes are the distinct labels, most frequent first kept, sorted by name;
* ranking with 0/1 labels: binary relevance of (entity, candidate) anchors; ranking with
  list labels lives in :mod:`rfm_runtime.ranking`;
* regression: classes are quantile bins of the context labels (a "bar distribution"); the
  prediction is the mean label of the median bin of the predicted distribution;
  ``context_value`` carries each context label standardised by the context mean and std.

Training and serving share this module, so both see the same label encoding.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from rfm_runtime.errors import RfmError

TASKS = ("binary", "regression", "multiclass", "ranking")


@dataclass(frozen=True)
class ContextLabels:
    """The labelled context as the head sees it.

    Attributes:
        task: one of :data:`TASKS`.
        keep: ``bool[N]`` which context rows are used (label not null, class kept).
        classes: ``int64[M]`` class index of each kept row (M = ``keep.sum()``).
        values: ``float32[M]`` standardised label (regression), 0 otherwise.
        num_classes: C.
        class_names: multiclass: the name of each class index.
        centers: regression: ``float64[C]`` mean label of each bin.
        edges: regression: inner quantile edges (``float64[E]``).
        bin_map: regression: ``int64[E + 1]`` class of each interval between edges.
    """

    task: str
    keep: np.ndarray
    classes: np.ndarray
    values: np.ndarray
    num_classes: int
    class_names: tuple[str, ...] = ()
    centers: np.ndarray | None = None
    edges: np.ndarray | None = None
    bin_map: np.ndarray | None = None

    @property
    def head_task(self) -> str:
        """The task type the head is run with (ranking is binary per candidate)."""
        return "binary" if self.task == "ranking" else self.task


def prepare_labels(task: str, labels: list | np.ndarray, max_classes: int) -> ContextLabels:
    """Encode context labels for the head.

    Args:
        task: ``binary``, ``regression``, ``multiclass`` or ``ranking`` (binary relevance).
        labels: N labels: numbers (binary 0/1 or true/false, regression) or class names.
        max_classes: K, the head's class capacity.

    Raises:
        RfmError: for an unknown task, no usable label, or non-0/1 binary labels.
    """
    if task not in TASKS:
        raise RfmError(f"task '{task}' is not one of {', '.join(TASKS)}")
    if task == "multiclass":
        return _multiclass(list(labels), max_classes)
    y = np.array([np.nan if v is None else float(v) for v in labels], dtype=np.float64)
    keep = np.isfinite(y)
    if not keep.any():
        raise RfmError(f"no labelled context anchors for the {task} target (all labels null)")
    yk = y[keep]
    if task in ("binary", "ranking"):
        if not np.isin(yk, (0.0, 1.0)).all():
            bad = yk[~np.isin(yk, (0.0, 1.0))][0]
            raise RfmError(f"a {task} target needs labels 0/1 (or true/false), found {bad}")
        zeros = np.zeros(len(yk), np.float32)
        return ContextLabels(task, keep, yk.astype(np.int64), zeros, 2)
    quantiles = np.quantile(yk, np.linspace(0, 1, max_classes + 1)[1:-1])
    edges = np.unique(quantiles)
    raw = np.searchsorted(edges, yk, side="right")
    present = np.unique(raw)  # ties leave some bins empty: keep only filled ones
    bin_map = np.minimum(np.searchsorted(present, np.arange(len(edges) + 1)), len(present) - 1)
    classes = bin_map[raw].astype(np.int64)
    c = len(present)
    centers = np.bincount(classes, weights=yk, minlength=c) / np.bincount(classes, minlength=c)
    std = yk.std() or 1.0
    values = ((yk - yk.mean()) / std).astype(np.float32)
    return ContextLabels(
        task, keep, classes, values, c, centers=centers, edges=edges, bin_map=bin_map
    )


def _multiclass(labels: list, max_classes: int) -> ContextLabels:
    names = [None if v is None else str(v) for v in labels]
    counts = Counter(n for n in names if n is not None)
    if not counts:
        raise RfmError("no labelled context anchors for the multiclass target (all labels null)")
    top = sorted(c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_classes])
    index = {c: i for i, c in enumerate(top)}
    keep = np.array([n in index for n in names], dtype=bool)
    classes = np.array([index[n] for n in names if n in index], dtype=np.int64)
    zeros = np.zeros(len(classes), np.float32)
    return ContextLabels("multiclass", keep, classes, zeros, len(top), class_names=tuple(top))


def query_classes(ctx: ContextLabels, labels: list | np.ndarray) -> np.ndarray:
    """Class index of query labels under the context's encoding (-1 where unknown).

    Training uses it to score the head's prediction of a query's label.
    """
    if ctx.task == "multiclass":
        index = {c: i for i, c in enumerate(ctx.class_names)}
        return np.array([-1 if v is None else index.get(str(v), -1) for v in labels], np.int64)
    y = np.array([np.nan if v is None else float(v) for v in labels], dtype=np.float64)
    if ctx.edges is not None and ctx.bin_map is not None:
        out = ctx.bin_map[np.searchsorted(ctx.edges, y, side="right")].astype(np.int64)
    else:
        out = np.where(np.isin(y, (0.0, 1.0)), y, -1).astype(np.int64)
    return np.where(np.isfinite(y), out, -1)


@dataclass(frozen=True)
class Decoded:
    """Head outputs turned into prediction columns, one entry per query anchor."""

    prediction: np.ndarray  # float64[Q], NaN where not applicable
    probability: np.ndarray  # float64[Q], NaN where not applicable
    predicted_class: list[str | None]
    class_scores: list[list[dict[str, object]] | None]
    #: the readout's inputs beside the head's output, by name: the target or sibling history
    #: features (float64[Q] each); ranking: each pair term and the readout's score over
    #: ``items`` (float64[Q, C] each). The tree head reads them (:mod:`rfm_runtime.trees`)
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    #: ranking: the C candidate items the inputs are about
    items: tuple[str, ...] = ()


def decode(ctx: ContextLabels, probs: np.ndarray) -> Decoded:
    """Turn class probabilities ``float32[Q, K]`` into predictions for ``ctx.task``."""
    q = probs.shape[0]
    p = probs[:, : ctx.num_classes].astype(np.float64)
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    nan = np.full(q, np.nan)
    if ctx.task in ("binary", "ranking"):
        pos = p[:, 1]
        return Decoded((pos >= 0.5).astype(np.float64), pos, [None] * q, [None] * q)
    if ctx.task == "regression":
        # The median of the predicted distribution over bins: it minimises absolute error,
        # which the mean (p @ centers) does not on skewed labels such as counts.
        centers = ctx.centers if ctx.centers is not None else np.zeros(ctx.num_classes)
        median_bin = (np.cumsum(p, axis=1) >= 0.5).argmax(axis=1)
        return Decoded(centers[median_bin], nan, [None] * q, [None] * q)
    names = ctx.class_names
    best = p.argmax(axis=1)
    order = np.argsort(-p, axis=1, kind="stable")
    scores = [[{"class": names[j], "score": float(p[i, j])} for j in order[i]] for i in range(q)]
    return Decoded(nan, nan, [names[j] for j in best], scores)  # type: ignore[arg-type]
