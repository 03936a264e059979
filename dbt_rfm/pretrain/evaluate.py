"""Zero-shot metrics of the net on held-out prepared tasks (fixed episodes, no gradient).

Per task, one fixed episode (seeded by the task's name): context anchors before the query
time, all query anchors. Metrics, each next to its no-skill reference so "above chance" is
read off directly:

* binary: ``auroc`` (chance 0.5);
* regression: ``r2`` of the expected value (chance <= 0) and ``nmae``, the MAE divided by the
  MAE of the context median (chance 1.0, lower is better);
* multiclass: ``acc`` and ``acc_majority`` (always the context's most frequent class);
* ranking: ``map`` (MAP@k over the 10 items most frequent in the context, one binary head
  call per item) and ``map_popular`` (those items in popularity order).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from rfm_runtime.labels import decode

from dbt_rfm.nn.encoder import RelationalEncoder
from dbt_rfm.nn.icl_head import ICLHead
from dbt_rfm.pretrain.episode import (
    Episode,
    draw_episode,
    encode_rows,
    frequent_items,
    score_queries,
)
from dbt_rfm.pretrain.tasks import PreparedTask

CANDIDATES = 10


def auroc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half); None unless both classes occur.

    Args:
        y: ``float64[Q]`` labels 0/1. score: ``float64[Q]`` scores.
    """
    pos, neg = score[y == 1], score[y == 0]
    if not len(pos) or not len(neg):
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def map_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int) -> float:
    """Mean average precision at k over queries (queries with no relevant item count 0)."""
    aps = []
    for items, rel in zip(ranked, relevant, strict=True):
        hits, total = 0, 0.0
        for i, x in enumerate(items[:k]):
            if x in rel:
                hits += 1
                total += hits / (i + 1)
        aps.append(total / min(k, len(rel)) if rel else 0.0)
    return float(np.mean(aps)) if aps else 0.0


def _seed(t: PreparedTask) -> int:
    return zlib.crc32(f"{t.db}/{t.name}".encode())


@torch.no_grad()
def evaluate_task(
    encoder: RelationalEncoder, head: ICLHead, t: PreparedTask, context_size: int
) -> dict[str, float]:
    """Zero-shot metrics of one task (see the module docstring); {} when undefined."""
    rng = np.random.default_rng(_seed(t))
    ep = draw_episode(t, rng, context_size, len(t.query_rows))
    if t.task == "ranking":  # draw_episode made it binary for one item: rebuild per item
        ep = Episode(
            "ranking",
            ep.ctx_rows,
            ep.q_rows,
            [t.labels[i] for i in ep.ctx_rows],
            [t.labels[i] for i in ep.q_rows],
        )
    emb = encode_rows(encoder, t, np.concatenate([ep.ctx_rows, ep.q_rows]))
    ctx_emb, q_emb = emb[: len(ep.ctx_rows)], emb[len(ep.ctx_rows) :]
    if t.task == "ranking":
        return _ranking(head, ctx_emb, q_emb, ep, t.top_k)
    out = score_queries(head, ctx_emb, q_emb, ep, None)
    if out is None:
        return {}
    logits, q_cls, q_keep, ctx = out
    probs = torch.softmax(logits, dim=-1).numpy()
    if t.task == "binary":
        a = auroc(q_cls.astype(np.float64), probs[:, 1].astype(np.float64))
        return {} if a is None else {"auroc": a}
    if t.task == "multiclass":
        pred = probs[:, : ctx.num_classes].argmax(axis=1)
        majority = np.bincount(ctx.classes, minlength=ctx.num_classes).argmax()
        return {
            "acc": float((pred == q_cls).mean()),
            "acc_majority": float((q_cls == majority).mean()),
        }
    y = np.array([ep.q_labels[i] for i in q_keep], dtype=np.float64)
    pred = decode(ctx, probs).prediction
    y_ctx = np.array(ep.ctx_labels, dtype=np.float64)
    sst = float(((y - y.mean()) ** 2).sum())
    base = float(np.abs(y - np.median(y_ctx)).mean())
    res: dict[str, float] = {}
    if sst > 0:
        res["r2"] = max(-1.0, 1.0 - float(((y - pred) ** 2).sum()) / sst)
    if base > 0:
        res["nmae"] = float(np.abs(y - pred).mean()) / base
    return res


def _ranking(
    head: ICLHead, ctx_emb: torch.Tensor, q_emb: torch.Tensor, ep: Episode, k: int
) -> dict[str, float]:
    items = frequent_items(ep.ctx_labels, CANDIDATES)
    if not items:
        return {}
    scores = np.zeros((len(ep.q_rows), len(items)))
    for j, item in enumerate(items):
        cl = [1.0 if item in x else 0.0 for x in ep.ctx_labels]
        ql = [1.0 if item in x else 0.0 for x in ep.q_labels]
        out = score_queries(
            head, ctx_emb, q_emb, Episode("binary", ep.ctx_rows, ep.q_rows, cl, ql), None
        )
        if out is None:
            return {}
        scores[:, j] = torch.softmax(out[0], dim=-1)[:, 1].numpy()
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = [[items[j] for j in row] for row in order]
    relevant = [set(x) for x in ep.q_labels]
    return {
        "map": map_at_k(ranked, relevant, k),
        "map_popular": map_at_k([items] * len(relevant), relevant, k),
    }


def evaluate(
    encoder: RelationalEncoder,
    head: ICLHead,
    groups: Mapping[str, Sequence[PreparedTask]],
    context_size: int,
) -> dict[str, dict[str, float]]:
    """Mean of each metric over the tasks of each group (``n_<metric>``: tasks counted).

    Returns:
        ``{group: {metric: mean, "n_" + metric: count}}``.
    """
    was = encoder.training, head.training
    encoder.eval()
    head.eval()
    out: dict[str, dict[str, float]] = {}
    for group, tasks in groups.items():
        acc: dict[str, list[float]] = {}
        for t in tasks:
            for name, v in evaluate_task(encoder, head, t, context_size).items():
                acc.setdefault(name, []).append(v)
        out[group] = {m: round(float(np.mean(v)), 4) for m, v in sorted(acc.items())}
        out[group] |= {f"n_{m}": len(v) for m, v in sorted(acc.items())}
    encoder.train(was[0])
    head.train(was[1])
    return out
