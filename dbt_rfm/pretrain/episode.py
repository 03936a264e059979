"""Episodes: a context/query draw from a prepared task, and the head's loss or predictions.

Unlike :func:`dbt_rfm.nn.train.episode_loss` (which splits one labelled set at random), an
episode here keeps the time split of the task: context anchors are labelled before the query
time, queries are at it. Ranking targets become binary "will the entity's list contain item
x" episodes (the runtime ranks candidates one binary head call each), x drawn among the items
frequent in the context.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rfm_runtime.contract import TASK_TYPES
from rfm_runtime.labels import ContextLabels, prepare_labels, query_classes

from dbt_rfm.nn.encoder import RelationalEncoder
from dbt_rfm.nn.icl_head import ICLHead
from dbt_rfm.nn.train import to_tensors
from dbt_rfm.pretrain.tasks import PreparedTask


@dataclass(frozen=True)
class Episode:
    """Rows of one task used as context and as queries, with their labels.

    Attributes:
        task: the head task: binary, regression or multiclass (ranking: binary per item).
        ctx_rows: ``int64[N]`` context rows of the task; q_rows: ``int64[Q]`` query rows.
        ctx_labels: N labels; q_labels: Q labels.
    """

    task: str
    ctx_rows: np.ndarray
    q_rows: np.ndarray
    ctx_labels: list[Any]
    q_labels: list[Any]


def frequent_items(labels: list[list[str]], n: int) -> list[str]:
    """The ``n`` items most often in ``labels`` (ties by name)."""
    counts = Counter(x for items in labels for x in items)
    return [x for x, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def draw_episode(
    t: PreparedTask,
    rng: np.random.Generator,
    context_size: int,
    query_size: int,
    pools: tuple[np.ndarray, np.ndarray] | None = None,
) -> Episode:
    """A random episode: up to ``context_size`` context and ``query_size`` query anchors, drawn
    from ``pools`` (context rows, query rows) when given, else from the task's own."""
    ctx, q = pools if pools is not None else (t.context_rows, t.query_rows)
    ctx = np.sort(rng.choice(ctx, size=min(context_size, len(ctx)), replace=False))
    q = np.sort(rng.choice(q, size=min(query_size, len(q)), replace=False))
    cl, ql = [t.labels[i] for i in ctx], [t.labels[i] for i in q]
    if t.task != "ranking":
        return Episode(t.task, ctx, q, cl, ql)
    items = frequent_items(cl, 5) or frequent_items(ql, 1)
    item = items[int(rng.integers(len(items)))] if items else ""
    return Episode("binary", ctx, q, _has(cl, item), _has(ql, item))


def _has(labels: list[list[str]], item: str) -> list[float]:
    return [1.0 if item in items else 0.0 for items in labels]


def head_inputs(
    ep: Episode, k: int, rng: np.random.Generator | None, flip_binary: float = 0.0
) -> tuple[ContextLabels, np.ndarray, np.ndarray, np.ndarray, int]:
    """Encode labels for the head.

    Args:
        ep: the episode.
        k: the head's class capacity K.
        rng: permutes multiclass class ids when given (training), identity otherwise.
        flip_binary: with ``rng``, the chance that a binary episode's classes 0 and 1 swap.

    Returns:
        ``(ctx, ctx_classes int64[N'], q_classes int64[Q'], q_keep int64[Q'], num_classes)``:
        the context rows kept are ``ctx.keep`` (N' of them); ``q_keep`` indexes the Q'
        queries whose label has a class under the context's encoding.
    """
    ctx = prepare_labels(ep.task, ep.ctx_labels, k)
    q_cls = query_classes(ctx, ep.q_labels)
    q_keep = np.flatnonzero(q_cls >= 0)
    classes, q_cls = ctx.classes, q_cls[q_keep]
    num_classes = ctx.num_classes
    if ctx.task == "multiclass" and rng is not None:  # class ids are arbitrary names
        perm = rng.permutation(k)[: ctx.num_classes]
        classes, q_cls = perm[classes], perm[q_cls]
        num_classes = k
    if ctx.task == "binary" and rng is not None and flip_binary and rng.random() < flip_binary:
        classes, q_cls = 1 - classes, 1 - q_cls
    return ctx, classes, q_cls, q_keep, num_classes


def encode_rows(encoder: RelationalEncoder, t: PreparedTask, rows: np.ndarray) -> torch.Tensor:
    """Anchor embeddings ``float32[len(rows), d]`` of rows of ``t``."""
    return encoder(*to_tensors(t.tokens(rows)))


def score_queries(
    head: ICLHead,
    ctx_emb: torch.Tensor,
    q_emb: torch.Tensor,
    ep: Episode,
    rng: np.random.Generator | None,
    flip_binary: float = 0.0,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray, ContextLabels] | None:
    """Run the head on embeddings of the episode's context (``[N, d]``) and queries (``[Q, d]``).

    Returns:
        ``(logits float32[Q', K], q_classes int64[Q'], q_keep int64[Q'], ctx)`` for the Q'
        queries whose label the context's encoding knows; None when there are none.
    """
    ctx, classes, q_cls, q_keep, num_classes = head_inputs(ep, head.k, rng, flip_binary)
    if not len(q_keep):
        return None
    keep = torch.from_numpy(np.flatnonzero(ctx.keep))
    logits, _ = head(
        q_emb[torch.from_numpy(q_keep)],
        ctx_emb[keep],
        torch.from_numpy(classes.astype(np.int64)),
        torch.from_numpy(ctx.values),
        torch.tensor([TASK_TYPES.index(ctx.head_task)]),
        torch.tensor([num_classes]),
    )
    return logits, q_cls, q_keep, ctx


def episode_loss(
    encoder: RelationalEncoder,
    head: ICLHead,
    t: PreparedTask,
    rng: np.random.Generator,
    context_size: int,
    query_size: int,
    flip_binary: float = 0.0,
    pools: tuple[np.ndarray, np.ndarray] | None = None,
) -> torch.Tensor | None:
    """Cross-entropy of the queries of one random episode of ``t``; None when unusable
    (``flip_binary``: see :func:`head_inputs`; ``pools``: see :func:`draw_episode`)."""
    ep = draw_episode(t, rng, context_size, query_size, pools)
    emb = encode_rows(encoder, t, np.concatenate([ep.ctx_rows, ep.q_rows]))
    n = len(ep.ctx_rows)
    out = score_queries(head, emb[:n], emb[n:], ep, rng, flip_binary)
    if out is None:
        return None
    logits, q_cls, _, _ = out
    return F.cross_entropy(logits, torch.from_numpy(q_cls.astype(np.int64)))
