"""Prepared tasks: one random target on one database, tokenized, split in time like scoring.

For a target the anchors of its spine are labelled with the project's own label SQL
(:class:`dbt_rfm.synth.LabelDB`). The latest anchor time is the *query time* ``T``; query
anchors are the labelled anchors at ``T``; context anchors are labelled anchors whose label
window ends by ``T`` (``anchor_time + window <= T``), exactly the rule ``rfm_anchor_sql``
applies at scoring time, so no context label reads a row after the query anchors' time.
Subgraphs come from the in-process sampler (:mod:`dbt_rfm.sampling`, same ids as the SQL
sampler) and tokens from :func:`rfm_runtime.tokenize.tokenize`, the tokenizer serving uses.

Tokens are kept compact (int16/int32 instead of int64, trailing padding trimmed) so that a
pool of databases fits in memory; :meth:`PreparedTask.tokens` widens the rows asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rfm_runtime.tokenize import TokenBatch, TokenizerConfig, anchor_keys, time_us, tokenize

from dbt_rfm.labels import add_interval
from dbt_rfm.pql.target import Target
from dbt_rfm.sampling import GraphIndex, cells, sample
from dbt_rfm.sampling.sample import DEFAULT_FANOUTS
from dbt_rfm.synth.db import SynthDB
from dbt_rfm.synth.sql_labels import LabelDB
from dbt_rfm.synth.targets import random_targets, static_anchors, target_anchors

_FLOATS = tuple(k for k, v in TokenBatch.input_dtypes().items() if v == "float32")


@dataclass(frozen=True)
class PrepSettings:
    """How tasks are drawn and sized (part of the cache key).

    Attributes:
        targets_per_db: random targets drawn per database.
        max_entities: anchors per spine time (subsample of the entities that exist).
        context_pool: most context anchors kept per task.
        query_pool: most query anchors kept per task.
        min_context: fewest labelled context anchors for a task to be kept.
        min_query: fewest labelled query anchors for a task to be kept.
        fanouts: child caps per hop of the sampler (``dbt_rfm:fanouts`` at scoring time).
    """

    targets_per_db: int = 8
    max_entities: int = 200
    context_pool: int = 192
    query_pool: int = 64
    min_context: int = 16
    min_query: int = 8
    fanouts: tuple[int, ...] = DEFAULT_FANOUTS

    def __post_init__(self) -> None:
        object.__setattr__(self, "fanouts", tuple(int(f) for f in self.fanouts))


@dataclass(frozen=True)
class PreparedTask:
    """One target's labelled context and query anchors, tokenized.

    Attributes:
        db: database name; name: target name; task: binary, regression, multiclass, ranking.
        top_k: ranking only: k of MAP@k.
        arrays: compact TokenBatch fields, each ``[A, S', ...]`` (A = context + query anchors,
            S' <= S trimmed); int16/int32 ints, float32 floats.
        labels: A labels: float (binary 0/1, regression), str (multiclass) or list[str]
            (ranking items).
        is_query: ``bool[A]``, True for the query anchors (at the query time).
        anchor_us: ``int64[A]`` anchor times, microseconds since the epoch.
        query_time: the query anchors' time (ISO text).
        target: the YAML target.
    """

    db: str
    name: str
    task: str
    top_k: int
    arrays: dict[str, np.ndarray]
    labels: list[Any]
    is_query: np.ndarray
    anchor_us: np.ndarray
    query_time: str
    target: dict[str, Any]

    @property
    def context_rows(self) -> np.ndarray:
        """``int64[N]`` rows of the context anchors."""
        return np.flatnonzero(~self.is_query)

    @property
    def query_rows(self) -> np.ndarray:
        """``int64[Q]`` rows of the query anchors."""
        return np.flatnonzero(self.is_query)

    def tokens(self, rows: np.ndarray) -> TokenBatch:
        """Tokens of ``rows`` as a full-width (int64 / float32) TokenBatch."""
        out = {}
        for name, a in self.arrays.items():
            sub = a[rows]
            out[name] = sub.astype(np.float32 if name in _FLOATS else np.int64)
        return TokenBatch(**out)


def compact(tokens: TokenBatch) -> dict[str, np.ndarray]:
    """Trim trailing padding and narrow integer arrays to int16 / int32 where they fit."""
    out: dict[str, np.ndarray] = {}
    for f in fields(TokenBatch):
        a = getattr(tokens.trimmed(), f.name)
        if f.name in _FLOATS:
            out[f.name] = a.astype(np.float32)
            continue
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        small = lo >= np.iinfo(np.int16).min and hi <= np.iinfo(np.int16).max
        out[f.name] = a.astype(np.int16 if small else np.int32)
    return out


def prepare_db(
    db: SynthDB,
    seed: int,
    tokenizer: TokenizerConfig,
    settings: PrepSettings = PrepSettings(),
    targets: list[dict[str, Any]] | None = None,
) -> list[PreparedTask]:
    """Draw targets on ``db`` and prepare each as a task (those too small are skipped).

    Args:
        db: the database.
        seed: seeds the target draws and anchor subsamples (independent of training RNG).
        tokenizer: tokenizer settings of the net.
        settings: pool sizes and target count.
        targets: YAML targets to use instead of random ones.

    Returns:
        The prepared tasks, in target order.
    """
    rng = np.random.default_rng(seed)
    if targets is None:
        targets = random_targets(db, rng, settings.targets_per_db)
    index = GraphIndex.build(db.spec, db.tables)
    out: list[PreparedTask] = []
    with LabelDB(db) as ldb:
        for raw in targets:
            task = prepare_task(db, ldb, index, raw, rng, tokenizer, settings)
            if task is not None:
                out.append(task)
    return out


def prepare_task(
    db: SynthDB,
    ldb: LabelDB,
    index: GraphIndex,
    raw: dict[str, Any],
    rng: np.random.Generator,
    tokenizer: TokenizerConfig,
    settings: PrepSettings,
) -> PreparedTask | None:
    """One task (see the module docstring); None when too few anchors are labelled.

    Static targets: anchors are the entity's rows at their own time; context rows lie at or
    before the target's split, query rows after it, and the target column is hidden from the
    entity row (``TokenizerConfig.target_column``), as at scoring time.
    """
    target = Target.from_dict(raw)
    if target.aggregate is None:
        anchors = static_anchors(db, target.entity, rng, settings.max_entities * 10)
        labels = ldb.labels(target, anchors)
        if labels.num_rows == 0 or target.anchors.split is None:
            return None
        split = datetime.fromisoformat(target.anchors.split)
        times = labels["anchor_time"].to_pylist()
        is_q = np.array([t > split for t in times], dtype=bool)
        ctx_rows, q_rows, t_query = np.flatnonzero(~is_q), np.flatnonzero(is_q), split
        tokenizer = replace(tokenizer, target_column=target.static)
    else:
        anchors = target_anchors(db, raw, rng, settings.max_entities)
        labels = ldb.labels(target, anchors)
        if labels.num_rows == 0:
            return None
        times = labels["anchor_time"].to_pylist()
        t_query = max(times)
        agg = target.aggregate
        observed = [add_interval(t, agg.end, agg.unit) <= t_query for t in times]
        is_q = np.array([t == t_query for t in times], dtype=bool)
        ctx_rows = np.flatnonzero(np.array(observed, dtype=bool) & ~is_q)
        q_rows = np.flatnonzero(is_q)
    if len(ctx_rows) < settings.min_context or len(q_rows) < settings.min_query:
        return None
    ctx_rows = _subsample(rng, ctx_rows, settings.context_pool)
    q_rows = _subsample(rng, q_rows, settings.query_pool)
    rows = np.concatenate([ctx_rows, q_rows])
    chosen = labels.take(pa.array(rows, pa.int64()))
    anchors_t = chosen.select(["entity_id", "anchor_time"])
    sub = sample(index, None, anchors_t, fanouts=settings.fanouts, entity=target.entity)
    got = cells(index, None, sub)
    tokens = tokenize(got, anchor_keys(anchors_t), tokenizer)
    return PreparedTask(
        db=db.name,
        name=target.name,
        task=target.task,
        top_k=int(target.top_k or 10),
        arrays=compact(tokens),
        labels=_labels(chosen, target.task),
        is_query=np.r_[np.zeros(len(ctx_rows), bool), np.ones(len(q_rows), bool)],
        anchor_us=time_us(anchors_t["anchor_time"]),
        query_time=_iso(t_query),
        target=dict(raw),
    )


def _subsample(rng: np.random.Generator, rows: np.ndarray, cap: int) -> np.ndarray:
    return rows if len(rows) <= cap else np.sort(rng.choice(rows, size=cap, replace=False))


def _labels(chosen: pa.Table, task: str) -> list[Any]:
    if task == "multiclass":
        return list(chosen["label_class"].to_pylist())
    if task == "ranking":
        return [list(v or []) for v in chosen["label_items"].to_pylist()]
    return [float(v) for v in pc.cast(chosen["label"], pa.float64()).to_pylist()]


def _iso(t: datetime) -> str:
    return t.isoformat(sep=" ")
