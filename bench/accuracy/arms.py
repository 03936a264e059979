"""Baseline arms. Every arm sees the same :class:`TaskSplits` and returns predictions for the
validation and test rows in split order, with its wall time split into features / train / score.

To add an arm (e.g. the relational foundation model, zero-shot or fine-tuned), implement
:class:`Arm`: ``run(ctx)`` gets the labelled train (context) and val anchors and the test
anchors through ``ctx.splits``, and must not read ``ctx.splits.test`` labels.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa

from bench.accuracy.entity_columns import encode_categories, entity_columns
from bench.accuracy.lgbm import fit_tuned
from bench.accuracy.ranking import run_pairs
from bench.accuracy.tasks import SPLITS, TaskSplits
from dbt_rfm.aggregates import (
    ANCHORS,
    DEFAULT_WINDOWS,
    Graph,
    build_features,
    enumerate_paths,
    register_anchors,
)
from dbt_rfm.errors import RfmError

RANK_K = 5


#: Labelled context anchors the foundation-model arms score with (``--max-context``).
DEFAULT_MAX_CONTEXT = 2000


@dataclass
class ArmContext:
    """What an arm may use: the DuckDB connection, the graph, and the task's splits."""

    con: duckdb.DuckDBPyConnection
    graph: Graph
    splits: TaskSplits
    windows: tuple[Any, ...] = DEFAULT_WINDOWS
    cache: dict[str, Any] = field(default_factory=dict)
    full_splits: TaskSplits | None = None  # before ``--max-eval`` subsampling
    max_context: int = DEFAULT_MAX_CONTEXT  # context anchors of the foundation-model arms


@dataclass(frozen=True)
class ArmResult:
    """Predictions of one arm on one task.

    Attributes:
        val: predictions for ``splits.val`` rows: float64 ``[M]`` (binary: score, regression:
            value) or, for ranking, a list of ``M`` ranked id lists.
        test: the same for ``splits.test``.
        seconds: wall seconds ``{"features", "train", "score"}``.
        params: what the arm chose (hyperparameters, feature count).
    """

    val: Any
    test: Any
    seconds: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)


class Arm(Protocol):
    """A way to predict a task from its splits."""

    name: str

    def supports(self, kind: str) -> bool:
        """Whether the arm handles task kind ``kind``."""
        ...

    def run(self, ctx: ArmContext) -> ArmResult:
        """Predict val and test rows of ``ctx.splits``."""
        ...


def labels(table: pa.Table, kind: str) -> Any:
    """float64 ``[N]`` labels, or a list of id lists for ranking."""
    col = table.column("label")
    if kind == "ranking":
        return col.to_pylist()
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _popular(train_labels: list[list[str]]) -> list[str]:
    """Ids ranked by how many training labels contain them."""
    counts = Counter(x for lab in train_labels for x in lab)
    return [x for x, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _fill_ranking(first: list[str] | None, popular: list[str]) -> list[str]:
    out = list(dict.fromkeys(first or []))
    out += [x for x in popular if x not in out]
    return out[:RANK_K]


class Constant:
    """Majority class (binary; a constant score, so AUROC 0.5), train mean (regression), or
    the most popular ids in training labels (ranking)."""

    name = "constant"

    def supports(self, kind: str) -> bool:  # noqa: D102
        return True

    def run(self, ctx: ArmContext) -> ArmResult:  # noqa: D102
        t0 = time.perf_counter()
        kind = ctx.splits.task.kind
        y = labels(ctx.splits.train, kind)
        if kind == "ranking":
            top = _popular(y)[:RANK_K]
            value: Any = top
            val: Any = [top] * ctx.splits.val.num_rows
            test: Any = [top] * ctx.splits.test.num_rows
        else:
            value = float(y.mean() >= 0.5) if kind == "binary" else float(y.mean())
            val = np.full(ctx.splits.val.num_rows, value)
            test = np.full(ctx.splits.test.num_rows, value)
        train_s = time.perf_counter() - t0
        return ArmResult(
            val, test, {"features": 0.0, "train": train_s, "score": 0.0}, {"value": value}
        )


class PreviousLabel:
    """The entity's own latest label known at the anchor time (``Task.previous_label_sql``);
    the constant arm's value where there is none (ranking: padded with popular ids)."""

    name = "previous_label"

    def supports(self, kind: str) -> bool:  # noqa: D102
        return True

    def run(self, ctx: ArmContext) -> ArmResult:  # noqa: D102
        task = ctx.splits.task
        t0 = time.perf_counter()
        prev = {s: _previous(ctx.con, ctx.splits, s) for s in ("val", "test")}
        t1 = time.perf_counter()
        y = labels(ctx.splits.train, task.kind)
        out: dict[str, Any] = {}
        if task.kind == "ranking":
            popular = _popular(y)
            for s in ("val", "test"):
                out[s] = [_fill_ranking(p, popular) for p in prev[s]]
        else:
            fallback = float(y.mean())
            for s in ("val", "test"):
                p = np.array([np.nan if v is None else float(v) for v in prev[s]])
                out[s] = np.where(np.isnan(p), fallback, p)
        t2 = time.perf_counter()
        coverage = float(np.mean([v is not None for v in prev["test"]]))
        return ArmResult(
            out["val"],
            out["test"],
            {"features": t1 - t0, "train": 0.0, "score": t2 - t1},
            {"test_coverage": round(coverage, 4)},
        )


def _previous(con: duckdb.DuckDBPyConnection, splits: TaskSplits, split: str) -> list[Any]:
    """Previous labels of one split's anchors, in split order (None where unknown)."""
    register_anchors(con, splits.split(split))
    try:
        sql = splits.task.previous_label_sql(ANCHORS)
        table = con.sql(
            f"select a.anchor_idx, p.label from {ANCHORS} as a left join ({sql}) as p "
            "using (entity_id, anchor_time) order by a.anchor_idx"
        ).to_arrow_table()
    finally:
        con.unregister(ANCHORS)
    if table.num_rows != splits.split(split).num_rows:
        raise RfmError(
            f"previous labels of {split}: {table.num_rows} rows for "
            f"{splits.split(split).num_rows} anchors"
        )
    return table.column("label").to_pylist()


def stacked_splits(splits: TaskSplits) -> tuple[pa.Table, dict[str, slice]]:
    """All splits' anchors in one table (features are built once), and each split's rows."""
    parts = [splits.split(s).select(["entity_id", "anchor_time"]) for s in SPLITS]
    bounds, start = {}, 0
    for s, p in zip(SPLITS, parts, strict=True):
        bounds[s] = slice(start, start + p.num_rows)
        start += p.num_rows
    return pa.concat_tables(parts), bounds


def entity_matrix(ctx: ArmContext) -> tuple[np.ndarray, list[str], list[int], float]:
    """Own columns of every anchor (all splits), categories coded from train; cached."""
    if "entity" not in ctx.cache:
        t0 = time.perf_counter()
        stacked, rows = stacked_splits(ctx.splits)
        cols = entity_columns(ctx.con, ctx.splits.task.entity_table, stacked)
        is_train = np.zeros(stacked.num_rows, dtype=bool)
        is_train[rows["train"]] = True
        names = list(cols.numeric) + list(cols.categorical)
        x = np.column_stack(
            list(cols.numeric.values())
            + [encode_categories(v, is_train) for v in cols.categorical.values()]
        )
        cat_idx = list(range(len(cols.numeric), len(names)))
        ctx.cache["entity"] = (x, names, cat_idx, time.perf_counter() - t0)
    return ctx.cache["entity"]


def fit_and_score(
    ctx: ArmContext, x: np.ndarray, cat_idx: list[int], features_s: float, names: list[str]
) -> ArmResult:
    """LightGBM tuned on validation (:func:`bench.accuracy.lgbm.fit_tuned`) on the features
    ``x`` of every anchor (all splits, ``names``; ``cat_idx`` categorical), scored on val and
    test; ``features_s``: the seconds the features took."""
    _, rows = stacked_splits(ctx.splits)
    kind = ctx.splits.task.kind
    # Drop columns constant (or all NaN) on train; keep category indices aligned.
    xt = x[rows["train"]]
    with np.errstate(all="ignore"):
        lo, hi = (
            np.nanmin(np.where(np.isnan(xt), np.inf, xt), 0),
            np.nanmax(np.where(np.isnan(xt), -np.inf, xt), 0),
        )
    keep = np.flatnonzero(lo < hi)
    x = x[:, keep]
    cats = [int(np.flatnonzero(keep == c)[0]) for c in cat_idx if c in set(keep)]
    t0 = time.perf_counter()
    fitted = fit_tuned(
        kind,
        x[rows["train"]],
        labels(ctx.splits.train, kind),
        x[rows["val"]],
        labels(ctx.splits.val, kind),
        cats,
    )
    t1 = time.perf_counter()
    test = fitted.predict(x[rows["test"]])
    t2 = time.perf_counter()
    val = fitted.predict(x[rows["val"]])
    gain = fitted.booster.feature_importance("gain")
    top = [names[keep[i]] for i in np.argsort(-gain)[:5]]
    params = fitted.params | {"features": int(keep.size), "top_features": top}
    return ArmResult(
        val, test, {"features": features_s, "train": t1 - t0, "score": t2 - t1}, params
    )


class LgbmEntity:
    """LightGBM on the entity's own columns (see :mod:`bench.accuracy.entity_columns`)."""

    name = "lgbm_entity"

    def supports(self, kind: str) -> bool:  # noqa: D102
        return kind in ("binary", "regression")

    def run(self, ctx: ArmContext) -> ArmResult:  # noqa: D102
        x, names, cat_idx, secs = entity_matrix(ctx)
        return fit_and_score(ctx, x, cat_idx, secs, names)


class LgbmAggregates:
    """LightGBM on the own columns plus time-aware aggregates over every link path of at most
    two hops (:func:`dbt_rfm.aggregates.enumerate_paths`). Ranking tasks score candidate
    pairs with pair aggregates instead (:mod:`bench.accuracy.ranking`)."""

    name = "lgbm_aggregates"

    def supports(self, kind: str) -> bool:  # noqa: D102
        return kind in ("binary", "regression", "ranking")

    def run(self, ctx: ArmContext) -> ArmResult:  # noqa: D102
        if ctx.splits.task.kind == "ranking":
            popular = _popular(labels(ctx.splits.train, "ranking"))
            val, test, timing, params = run_pairs(ctx, RANK_K, popular)
            return ArmResult(val, test, timing, params)
        x_own, own_names, cat_idx, own_s = entity_matrix(ctx)
        t0 = time.perf_counter()
        stacked, _ = stacked_splits(ctx.splits)
        entity = ctx.splits.task.entity_table
        paths = enumerate_paths(ctx.graph, entity)
        agg = build_features(ctx.con, ctx.graph, stacked, entity, paths, ctx.windows)
        secs = own_s + time.perf_counter() - t0
        x = np.hstack([x_own, agg.values])
        return fit_and_score(ctx, x, cat_idx, secs, own_names + list(agg.names))


ARMS: dict[str, Arm] = {
    a.name: a for a in (Constant(), PreviousLabel(), LgbmEntity(), LgbmAggregates())
}
