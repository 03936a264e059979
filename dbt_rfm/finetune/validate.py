"""Validation of a fine-tuning run: the fixed validation episode's loss and the task metric.

The episode's context is training anchors, its queries the validation anchors; the labels of
the queries are only compared with the head's output. Metrics come from
:mod:`dbt_rfm.pretrain.evaluate`: binary ``auroc``; regression ``nmae`` (MAE divided by the
MAE of the context median, lower is better); multiclass ``acc``; ranking ``map`` (MAP@k).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dbt_rfm.nn.encoder import RelationalEncoder
from dbt_rfm.nn.icl_head import ICLHead
from dbt_rfm.pretrain.episode import Episode, encode_rows, frequent_items, score_queries
from dbt_rfm.pretrain.evaluate import evaluate_task
from dbt_rfm.pretrain.tasks import PreparedTask

#: Primary validation metric per task (reported; early stopping follows the validation loss).
METRICS: dict[str, str] = {
    "binary": "auroc",
    "regression": "nmae",
    "multiclass": "acc",
    "ranking": "map",
}
_RANKING_ITEMS = 5


@torch.no_grad()
def _val_loss(
    encoder: RelationalEncoder, head: ICLHead, t: PreparedTask, ctx: np.ndarray
) -> float | None:
    """Mean query cross-entropy of the fixed validation episode (context ``ctx``)."""
    q = t.query_rows
    emb = encode_rows(encoder, t, np.concatenate([ctx, q]))
    c_emb, q_emb = emb[: len(ctx)], emb[len(ctx) :]
    cl, ql = [t.labels[i] for i in ctx], [t.labels[i] for i in q]
    if t.task == "ranking":
        items = frequent_items(cl, _RANKING_ITEMS)
        eps = [
            Episode("binary", ctx, q, [float(x in v) for v in cl], [float(x in v) for v in ql])
            for x in items
        ]
    else:
        eps = [Episode(t.task, ctx, q, cl, ql)]
    losses = []
    for ep in eps:
        out = score_queries(head, c_emb, q_emb, ep, None)
        if out is not None:
            logits, q_cls, _, _ = out
            losses.append(float(F.cross_entropy(logits, torch.from_numpy(q_cls.astype(np.int64)))))
    return float(np.mean(losses)) if losses else None


def validate(
    encoder: RelationalEncoder,
    head: ICLHead,
    val: PreparedTask,
    ctx: np.ndarray,
    metric: str,
    context_size: int,
) -> dict[str, float | None]:
    """Validation loss and metric of the net on the fixed validation episode.

    Args:
        encoder, head: the net (restored to its train/eval mode afterwards).
        val: task whose query rows are the validation anchors; ``ctx`` indexes its rows.
        ctx: ``int64[N]`` context rows (training anchors) for the loss.
        metric: the task's metric (:data:`METRICS`).
        context_size: context anchors of the metric's episode (drawn by
            :func:`dbt_rfm.pretrain.evaluate.evaluate_task`, seeded by the task's name).

    Returns:
        ``{"val_loss": mean cross-entropy or None, metric: value or None}``.
    """
    was = encoder.training, head.training
    encoder.eval()
    head.eval()
    loss = _val_loss(encoder, head, val, ctx)
    value = evaluate_task(encoder, head, val, context_size).get(metric)
    encoder.train(was[0])
    head.train(was[1])
    rounded = None if loss is None else round(loss, 5)
    return {"val_loss": rounded, metric: None if value is None else round(float(value), 4)}
