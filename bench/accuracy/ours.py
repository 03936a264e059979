"""The relational foundation model's arms: zero-shot in-context learning and fine-tuned.

Both run exactly the serving path: the demo's declared graph (``rfm_graph_spec``, see
:mod:`bench.accuracy.rfm_graph`), the in-process sampler :mod:`dbt_rfm.sampling` with its
default hops and fanouts, and :func:`rfm_runtime.score.score` on an ONNX artifact. Queries =
the val and test anchors. The context of each is the labelled training anchors with its weekday
and time of day (the dbt spine's rule, decision 0009; every training anchor for the static
task), at most ``max_context``, the most recent anchor times first, ties broken by a hash of
the entity id.

The artifact is ``$RFM_BENCH_ARTIFACT`` when set, else the shipped ``rfm-small``; the
fine-tuned arm starts from the torch checkpoint ``$RFM_BENCH_CHECKPOINT``.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from rfm_runtime.score import score
from rfm_runtime.session import DEFAULT_ARTIFACT, RfmSession
from rfm_runtime.tokenize import anchor_keys

from bench.accuracy.arms import RANK_K, ArmContext, ArmResult, _fill_ranking, _popular, labels
from bench.accuracy.rfm_graph import declared_graph, graph_tables
from bench.accuracy.tasks import Protocol
from dbt_rfm.errors import RfmError
from dbt_rfm.labels import build_history
from dbt_rfm.pql import parse
from dbt_rfm.pql.ir import History
from dbt_rfm.sampling import GraphIndex, cells, sample
from dbt_rfm.spec import GraphSpec

#: Static task T3: its target column is hidden from the entity row, as the dbt scorer does.
TARGET_COLUMNS: dict[str, tuple[str, ...]] = {"flight_delayed_15": ("late_or_cancelled",)}
#: The demo's declarations of the tasks whose readout reads a history (``rfm_item_history``,
#: ``rfm_target_history``, ``rfm_sibling_history`` in dbt), in PQL, with the static target's
#: history windows (``history:`` in flights.yml; PQL has no syntax for them).
HISTORY_TARGETS: dict[str, str] = {
    "plane_delay_7d": (
        "PREDICT EXISTS(flights.* WHERE flights.dep_delay > 15 OR flights.cancelled = TRUE, "
        "0, 7, days) FOR EACH planes.tailnum"
    ),
    "plane_next_dests_7d": (
        "PREDICT LIST_DISTINCT(flights.dest, 0, 7, days) FOR EACH planes.tailnum"
    ),
    "plane_flights_30d": "PREDICT COUNT(flights.*, 0, 30, days) FOR EACH planes.tailnum",
    "flight_delayed_15": "PREDICT flights.late_or_cancelled = TRUE FOR EACH flights.flight_id",
}
SIBLING_WINDOWS: dict[str, History] = {"flight_delayed_15": History((3, 6, 24), "hours")}
BATCH = 64
#: The query splits, each scored against its own context.
QUERIES = ("val", "test")
#: Anchors one ``PHASE`` apart share a weekday and time of day (``Protocol.step``).
PHASE = Protocol().step


def artifact_path() -> Path:
    """The ONNX artifact prefix the arms score with."""
    return Path(os.environ.get("RFM_BENCH_ARTIFACT", str(DEFAULT_ARTIFACT)))


def context_rows(train: pa.Table, max_context: int) -> np.ndarray:
    """Indices (int64 ``[<= max_context]``, ascending) of the training anchors kept as context.

    The most recent anchor times win; within a time, the order of ``md5(entity_id)``
    (deterministic, independent of row order).
    """
    n = train.num_rows
    if n <= max_context:
        return np.arange(n, dtype=np.int64)
    times = np.asarray(train.column("anchor_time").cast(pa.int64()).to_numpy())
    ids = train.column("entity_id").to_pylist()
    tie = np.array([int(hashlib.md5(str(e).encode()).hexdigest()[:12], 16) for e in ids])
    order = np.lexsort((tie, -times))
    return np.sort(order[:max_context]).astype(np.int64)


def _phase(table: pa.Table) -> np.ndarray:
    """int64 ``[N]``: each anchor time's place in its week (weekday and time of day), in us."""
    times = np.asarray(table.column("anchor_time").cast(pa.int64()).to_numpy())
    return np.mod(times, int(PHASE / timedelta(microseconds=1)))


def split_context(train: pa.Table, queries: pa.Table, max_context: int) -> np.ndarray:
    """Indices (as :func:`context_rows`) of the training anchors kept as context of ``queries``.

    When every query anchor has one weekday and time of day (temporal tasks: a split's anchor
    times step by a week), only training anchors with that phase are kept, as the dbt spine
    steps back from the scoring time (decision 0009); else (the static task) any.
    """
    phases = np.unique(_phase(queries))
    if len(phases) != 1:
        return context_rows(train, max_context)
    same = np.flatnonzero(_phase(train) == phases[0])
    if len(same) == 0:
        raise RfmError(
            "no training anchor has the weekday and time of day of the query anchors "
            f"({queries.column('anchor_time')[0]}); the protocol steps every split by a week"
        )
    return same[context_rows(train.take(pa.array(same)), max_context)]


@dataclass
class Context:
    """A labelled context and the query splits scored against it."""

    splits: tuple[str, ...]  # "val" and/or "test"
    anchors: pa.Table  # entity_id, anchor_time, label
    cells: pa.Table  # CELLS of the anchors


@dataclass
class Prepared:
    """The sampled cells of one task's contexts and queries (built once per task)."""

    spec: GraphSpec
    index: GraphIndex
    contexts: list[Context]  # one per weekday of the query splits (one for the static task)
    cells: dict[str, pa.Table]  # "val" / "test" -> CELLS
    seconds: float
    history: pa.Table | None = None  # the readout's history of context, val and test anchors


def graph_index(ctx: ArmContext) -> GraphIndex:
    """The in-process sampler's index of the declared graph; built once, cached in
    ``ctx.cache``."""
    if "ours_index" not in ctx.cache:
        spec = declared_graph()
        ctx.cache["ours_index"] = GraphIndex.build(spec, graph_tables(ctx.con, spec))
    index: GraphIndex = ctx.cache["ours_index"]
    return index


def prepare(ctx: ArmContext) -> Prepared:
    """Sample context and query subgraphs and unpivot them to cells; cached in ``ctx.cache``."""
    if "ours" in ctx.cache:
        cached: Prepared = ctx.cache["ours"]
        return cached
    t0 = time.perf_counter()
    spec = declared_graph()
    index = graph_index(ctx)
    splits = ctx.splits
    entity = splits.task.entity_table
    kept = {s: split_context(splits.train, splits.split(s), ctx.max_context) for s in QUERIES}
    shared = np.array_equal(kept["val"], kept["test"])
    contexts = []
    groups: list[tuple[str, ...]] = [QUERIES] if shared else [(s,) for s in QUERIES]
    for group in groups:
        anchors = splits.train.take(pa.array(kept[group[0]]))
        contexts.append(Context(group, anchors, anchor_cells(index, anchors, entity)))
    cells = {s: anchor_cells(index, splits.split(s), entity) for s in QUERIES}
    past = history(ctx, spec, *(c.anchors for c in contexts), splits.val, splits.test)
    prepared = Prepared(spec, index, contexts, cells, time.perf_counter() - t0, past)
    ctx.cache["ours"] = prepared
    return prepared


def history(ctx: ArmContext, spec: GraphSpec, *anchors: pa.Table) -> pa.Table | None:
    """The readout's history of the anchors (None for tasks without one), built by the Python
    twins of the macros behind ``rfm_item_history`` and ``rfm_target_history``."""
    name = ctx.splits.task.name
    if name not in HISTORY_TARGETS:
        return None
    target = parse(HISTORY_TARGETS[name], spec, name=name)
    if name in SIBLING_WINDOWS:
        target = replace(target, history=SIBLING_WINDOWS[name])
    keys = pa.concat_tables(t.select(["entity_id", "anchor_time"]) for t in anchors)
    tables = {t.name: f'"{t.name}"' for t in spec.tables}  # the bench database's names
    return build_history(ctx.con, spec, target, keys, tables)


def anchor_cells(index: GraphIndex, anchors: pa.Table, entity: str) -> pa.Table:
    """CELLS of the anchors (``entity_id``, ``anchor_time`` and any other columns) of ``entity``;
    the flights' outcomes are inputs only once known (the demo's ``meta.rfm.available_at``)."""
    keys = anchors.select(["entity_id", "anchor_time"])
    return cells(index, None, sample(index, None, keys, entity=entity))


def _batches(table: pa.Table) -> Iterator[pa.RecordBatch]:
    yield from table.to_batches(max_chunksize=65_536)


def predict(
    session: RfmSession, ctx: ArmContext, prep: Prepared, aggregates: pa.Table | None = None
) -> tuple[Any, Any, float]:
    """Predictions of the val and test rows (split order) and the share of rows the net scored
    (``aggregates``: the warehouse aggregates a tree head reads, of every query anchor).

    Each split is scored against its own context (one stream of both when they share it).
    Binary: P(label); regression: the predicted value; ranking: ``RANK_K`` ids (padded with
    the most popular training ids). Rows without a prediction get the constant arm's value.
    """
    found: dict[tuple[str, int], Any] = {}
    for c in prep.contexts:
        queries = pa.concat_tables([prep.cells[s] for s in c.splits])
        found |= score_queries(session, ctx, c.cells, c.anchors, queries, prep.history, aggregates)
    return assemble(ctx, found)


def score_queries(
    session: RfmSession,
    ctx: ArmContext,
    context_cells: pa.Table,
    context: pa.Table,
    query_cells: pa.Table,
    past: pa.Table | None = None,
    aggregates: pa.Table | None = None,
) -> dict[tuple[str, int], Any]:
    """Score a stream of query cells against one labelled context, with the readout's history
    ``past`` of context and query anchors (and the ``aggregates`` a tree head reads);
    prediction by anchor key (binary: P(label); regression: the value; ranking: the ranked
    ids)."""
    task = ctx.splits.task
    kind = task.kind
    if kind == "binary":
        context = context.set_column(
            2, "label", context.column("label").cast(pa.int64()).cast(pa.float64())
        )
    preds = pa.Table.from_batches(
        list(
            score(
                session,
                _batches(context_cells),
                context,
                _batches(query_cells),
                kind,
                task.name,
                target_column=TARGET_COLUMNS.get(task.name),
                history=past,
                aggregates=aggregates,
                batch_size=BATCH,
                top_k=RANK_K,
            )
        )
    )
    keys = anchor_keys(preds)
    found: dict[tuple[str, int], Any] = {}
    if kind == "ranking":
        for k, s in zip(keys, preds.column("class_scores").to_pylist(), strict=True):
            found[k] = [c["class"] for c in (s or [])]
    else:
        col = "probability" if kind == "binary" else "prediction"
        for k, v in zip(keys, preds.column(col).to_pylist(), strict=True):
            if v is not None and not np.isnan(v):
                found[k] = float(v)
    return found


def assemble(ctx: ArmContext, found: dict[tuple[str, int], Any]) -> tuple[Any, Any, float]:
    """Val and test predictions in split order from predictions by anchor key, the constant
    arm's value where one is missing; and the share of rows that had a prediction."""
    kind = ctx.splits.task.kind
    y_train = labels(ctx.splits.train, kind)
    popular = _popular(y_train) if kind == "ranking" else []
    fallback = 0.0 if kind == "ranking" else float(np.mean(y_train))
    out: list[Any] = []
    hits = 0
    for split in ("val", "test"):
        want = anchor_keys(ctx.splits.split(split))
        hits += sum(k in found for k in want)
        if kind == "ranking":
            out.append([_fill_ranking(found.get(k), popular) for k in want])
        else:
            out.append(np.array([found.get(k, fallback) for k in want], dtype=np.float64))
    total = ctx.splits.val.num_rows + ctx.splits.test.num_rows
    return out[0], out[1], hits / total


class OursArm:
    """What the foundation-model arms share: the task kinds they score."""

    def supports(self, kind: str) -> bool:  # noqa: D102
        return kind in ("binary", "regression", "ranking")


class ZeroShot(OursArm):
    """In-context learning only: the pretrained artifact, context = training anchors."""

    name = "ours_zero_shot"

    def run(self, ctx: ArmContext) -> ArmResult:  # noqa: D102
        prep = prepare(ctx)
        session = RfmSession.open(artifact_path())
        t0 = time.perf_counter()
        val, test, covered = predict(session, ctx, prep)
        t1 = time.perf_counter()
        params = {
            "artifact": str(artifact_path()),
            "model_version": session.model_version,
            "context": prep.contexts[-1].anchors.num_rows,
            "coverage": round(covered, 4),
        }
        return ArmResult(val, test, {"features": prep.seconds, "train": 0.0, "score": t1 - t0},
                         params)  # fmt: skip
