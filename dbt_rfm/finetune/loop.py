"""Fine-tune encoder and ICL head on one target, with validation and early stopping.

Training episodes draw context *and* queries from the training anchors only, in time order as
scoring meets them: each step picks a cut time among the training anchor times, draws the
queries from anchors at or after it and the context from anchors whose label was known by it
(known at or before the cut, from an earlier anchor time), and
:func:`dbt_rfm.pretrain.episode.episode_loss` scores them. Validation is one fixed episode:
training anchors whose label was known by the first validation anchor as context, the
(subsampled) validation anchors as queries; validation labels are only ever compared with
predictions, never fed to the head or to a gradient. Every ``eval_every`` steps the
validation loss and metric are measured; the weights with the lowest validation loss are
kept, and the run stops after ``patience`` validations without improvement. Step 0 is the
base net, so the result is never worse on validation loss than the base.

Metrics (from :mod:`dbt_rfm.pretrain.evaluate`): binary ``auroc``; regression ``nmae`` (MAE
divided by the MAE of the context median, lower is better); multiclass ``acc``; ranking
``map`` (MAP@k).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from rfm_runtime.tokenize import TokenBatch

from dbt_rfm.errors import RfmError
from dbt_rfm.finetune.config import FinetuneConfig
from dbt_rfm.finetune.validate import METRICS, validate
from dbt_rfm.nn.encoder import RelationalEncoder
from dbt_rfm.nn.icl_head import ICLHead
from dbt_rfm.pretrain.episode import episode_loss
from dbt_rfm.pretrain.tasks import PreparedTask, compact


@dataclass
class FinetuneResult:
    """What a fine-tuning run produced.

    Attributes:
        encoder, head: the fine-tuned net (the best validation step's weights), eval mode.
        task: the task type; metric: the primary metric's name (see :data:`METRICS`).
        steps: optimiser steps taken; best_step: step of the kept weights (0: the base).
        before: validation ``{"val_loss", metric}`` of the base net.
        after: the same for the kept weights.
        history: one dict per validation (step, train_loss, val_loss, metric, seconds).
        stopped_early: True when patience ran out before ``max_steps``.
        seconds: wall seconds of the run.
        n_train, n_val: training and validation anchors.
    """

    encoder: RelationalEncoder
    head: ICLHead
    task: str
    metric: str
    steps: int
    best_step: int
    before: dict[str, float | None]
    after: dict[str, float | None]
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0
    n_train: int = 0
    n_val: int = 0


def _task(
    name: str,
    task: str,
    top_k: int,
    tokens: TokenBatch,
    labels: Sequence[Any],
    times: np.ndarray,
    is_query: np.ndarray,
) -> PreparedTask:
    return PreparedTask(
        db="finetune",
        name=name,
        task=task,
        top_k=top_k,
        arrays=compact(tokens),
        labels=list(labels),
        is_query=is_query,
        anchor_us=np.asarray(times, np.int64),
        query_time="",
        target={"name": name},
    )


def _check(tokens: TokenBatch, labels: Sequence[Any], times: np.ndarray, what: str) -> None:
    if tokens.num_anchors != len(labels) or tokens.num_anchors != len(times):
        raise RfmError(
            f"finetune: {what}: {tokens.num_anchors} token rows, {len(labels)} labels and "
            f"{len(times)} anchor times; expected one of each per anchor"
        )
    if tokens.num_anchors < 2:
        raise RfmError(f"finetune: {what} needs at least 2 anchors, found {tokens.num_anchors}")


def finetune_arrays(
    encoder: RelationalEncoder,
    head: ICLHead,
    train_tokens: TokenBatch,
    train_labels: Sequence[Any],
    train_times: np.ndarray,
    val_tokens: TokenBatch,
    val_labels: Sequence[Any],
    val_times: np.ndarray,
    task: str,
    config: FinetuneConfig | None = None,
    *,
    top_k: int = 10,
    name: str = "target",
    train_known: np.ndarray | None = None,
    echo: Callable[[str], None] | None = None,
) -> FinetuneResult:
    """Fine-tune ``encoder`` and ``head`` in place on one target; keep the best validation step.

    Args:
        encoder, head: the base net (e.g. from :func:`dbt_rfm.nn.train.load_checkpoint`).
        train_tokens: ``[T, S]`` tokens of the training anchors.
        train_labels: their T labels (0/1, numbers, class names, or item lists for ranking).
        train_times: ``int64[T]`` their anchor times (microseconds since the epoch).
        val_tokens, val_labels, val_times: the same for the V validation anchors, every one
            strictly later than every training anchor.
        task: ``binary``, ``regression``, ``multiclass`` or ``ranking``.
        config: steps, patience, episode sizes, learning rate (default settings if None).
        top_k: ranking only: k of MAP@k.
        name: the target's name (for messages and the validation context's seed).
        train_known: ``int64[T]`` when each training label became known, in microseconds
            (the end of its window); the anchor times when None. An episode's context holds
            only labels known by its cut time, as scoring's context does.
        echo: receives one progress line per validation.

    Returns:
        The :class:`FinetuneResult`; its encoder and head are the arguments, holding the kept
        weights, in eval mode.

    Raises:
        RfmError: on an unknown task, mismatched array lengths, too few anchors, a
            validation anchor not later than every training anchor, or training anchors whose
            times leave no cut with a labelled past and a future.
    """
    if task not in METRICS:
        raise RfmError(f"finetune: unknown task '{task}'; expected one of {', '.join(METRICS)}")
    _check(train_tokens, train_labels, train_times, "training")
    _check(val_tokens, val_labels, val_times, "validation")
    if train_known is not None and len(train_known) != train_tokens.num_anchors:
        raise RfmError(
            f"finetune: {len(train_known)} label-known times for {train_tokens.num_anchors} "
            "training anchors; expected one per anchor"
        )
    if np.max(train_times) >= np.min(val_times):
        raise RfmError(
            "finetune: every validation anchor must be later than every training anchor "
            "(split with dbt_rfm.finetune.split.split_by_time)"
        )
    if train_tokens.stype.shape[1] != val_tokens.stype.shape[1]:
        raise RfmError("finetune: training and validation tokens have different sequence lengths")
    config = config or FinetuneConfig()
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _run(encoder, head, train_tokens, train_labels, train_times, val_tokens,
                    val_labels, val_times, task, config, top_k, name, train_known,
                    echo)  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def _run(
    encoder: RelationalEncoder,
    head: ICLHead,
    train_tokens: TokenBatch,
    train_labels: Sequence[Any],
    train_times: np.ndarray,
    val_tokens: TokenBatch,
    val_labels: Sequence[Any],
    val_times: np.ndarray,
    task: str,
    config: FinetuneConfig,
    top_k: int,
    name: str,
    train_known: np.ndarray | None,
    echo: Callable[[str], None] | None,
) -> FinetuneResult:
    start = time.monotonic()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    metric = METRICS[task]
    n_t, n_v = train_tokens.num_anchors, val_tokens.num_anchors
    train = _task(name, task, top_k, train_tokens, train_labels, train_times, np.zeros(n_t, bool))
    times = np.asarray(train_times, np.int64)
    # a context anchor at a cut: an earlier anchor time and a label known by the cut
    ready = np.maximum(times + 1, times if train_known is None else np.asarray(train_known))
    q_size = min(config.query_size, max(1, n_t // 2))
    min_context = min(config.context_size, n_t // 4)
    cuts = episode_cuts(times, ready, min_context, q_size)
    if len(cuts) == 0:
        raise RfmError(
            f"finetune: {name}: the {n_t} training anchors span too little time for episodes in "
            f"time order: no anchor time has {min_context} anchors labelled before it and "
            f"{q_size} at or after it; label a longer history"
        )
    # validation: a fixed draw of the training anchors known by the first validation anchor as
    # context, a fixed subsample of validation anchors as queries (only those are copied)
    known = np.flatnonzero(ready <= int(np.min(val_times)))
    v_rows = np.arange(n_v)
    if n_v > config.val_queries:
        v_rows = np.sort(rng.choice(n_v, size=config.val_queries, replace=False))
    known = known[
        np.sort(rng.choice(len(known), size=min(config.context_size, len(known)), replace=False))
    ]
    val = _task(
        name,
        task,
        top_k,
        TokenBatch.concat([train_tokens.take(known), val_tokens.take(v_rows)]),
        [train_labels[int(i)] for i in known] + [val_labels[int(i)] for i in v_rows],
        np.r_[times[known], np.asarray(val_times, np.int64)[v_rows]],
        np.r_[np.zeros(len(known), bool), np.ones(len(v_rows), bool)],
    )
    ctx = np.arange(len(known))

    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    before = validate(encoder, head, val, ctx, metric, config.context_size)
    best_loss = before["val_loss"] if before["val_loss"] is not None else float("inf")
    best = (0, copy.deepcopy(encoder.state_dict()), copy.deepcopy(head.state_dict()), before)
    history = [{"step": 0, "train_loss": None, **before, "seconds": 0.0}]
    _echo(echo, name, history[-1], metric, best[0])
    encoder.train()
    head.train()
    losses: list[float] = []
    bad, step, stopped = 0, 0, False
    while step < config.max_steps:
        step += 1
        cut = cuts[rng.integers(len(cuts))]
        pools = np.flatnonzero(ready <= cut), np.flatnonzero(times >= cut)
        loss = episode_loss(encoder, head, train, rng, config.context_size, q_size, pools=pools)
        if loss is not None:
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.clip)
            opt.step()
            losses.append(float(loss.item()))
        if step % config.eval_every and step < config.max_steps:
            continue
        now = validate(encoder, head, val, ctx, metric, config.context_size)
        train_loss = round(float(np.mean(losses)), 4) if losses else None
        losses = []
        history.append(
            {
                "step": step,
                "train_loss": train_loss,
                **now,
                "seconds": round(time.monotonic() - start, 2),
            }
        )
        if now["val_loss"] is not None and now["val_loss"] < best_loss:
            best_loss, bad = now["val_loss"], 0
            best = (
                step,
                copy.deepcopy(encoder.state_dict()),
                copy.deepcopy(head.state_dict()),
                now,
            )
        else:
            bad += 1
        _echo(echo, name, history[-1], metric, best[0])
        if bad >= config.patience:
            stopped = step < config.max_steps
            break
    encoder.load_state_dict(best[1])
    head.load_state_dict(best[2])
    encoder.eval()
    head.eval()
    return FinetuneResult(
        encoder=encoder,
        head=head,
        task=task,
        metric=metric,
        steps=step,
        best_step=best[0],
        before=before,
        after=best[3],
        history=history,
        stopped_early=stopped,
        seconds=round(time.monotonic() - start, 2),
        n_train=n_t,
        n_val=n_v,
    )


def episode_cuts(
    times: np.ndarray, ready: np.ndarray, min_context: int, min_queries: int
) -> np.ndarray:
    """The anchor times (``int64``, ascending) a training episode may cut at: at least
    ``min_context`` anchors ready as context (``ready <= cut``: see :func:`_run`) and
    ``min_queries`` anchors at or after it."""
    cuts = np.unique(times)
    before = np.searchsorted(np.sort(ready), cuts, side="right")
    after = len(times) - np.searchsorted(np.sort(times), cuts, side="left")
    return cuts[(before >= max(1, min_context)) & (after >= max(1, min_queries))]


def _echo(
    echo: Callable[[str], None] | None, name: str, row: dict[str, Any], metric: str, best: int
) -> None:
    if echo is None:
        return
    tl = "-" if row["train_loss"] is None else f"{row['train_loss']:.4f}"
    vl = "-" if row["val_loss"] is None else f"{row['val_loss']:.4f}"
    m = "-" if row.get(metric) is None else f"{row[metric]:.4f}"
    echo(
        f"finetune {name}: step {row['step']} train_loss {tl} val_loss {vl} {metric} {m} "
        f"(best step {best}, {row['seconds']:.1f}s)"
    )
