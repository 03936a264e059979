"""Train the encoder and ICL head on episodes, save and load checkpoints.

An episode samples labelled anchors, splits them at random into context and queries, encodes
all of them, and scores the queries' labels with the head (cross-entropy over the classes of
``rfm_runtime.labels``, the encoding serving uses). The same step serves "train briefly on my
target" and pretraining over many generated tasks: call :func:`episode_loss` per task.

Inputs are plain arrays: a :class:`~rfm_runtime.tokenize.TokenBatch` with one row per
labelled anchor and its labels.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rfm_runtime.contract import TASK_TYPES
from rfm_runtime.errors import RfmError
from rfm_runtime.labels import prepare_labels, query_classes
from rfm_runtime.ranking import is_list_labels
from rfm_runtime.tokenize import TokenBatch

from dbt_rfm.nn.config import NetConfig
from dbt_rfm.nn.encoder import RelationalEncoder
from dbt_rfm.nn.icl_head import ICLHead

log = logging.getLogger("dbt_rfm")


@dataclass(frozen=True)
class TrainConfig:
    """Episode training settings.

    Attributes:
        steps: optimiser steps (one episode each).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        context_size: labelled context anchors per episode.
        query_size: query anchors per episode.
        seed: seeds numpy and torch for reproducible episodes.
        clip: gradient-norm clip.
    """

    steps: int = 100
    lr: float = 1e-3
    weight_decay: float = 0.01
    context_size: int = 96
    query_size: int = 32
    seed: int = 0
    clip: float = 1.0


def to_tensors(tokens: TokenBatch) -> tuple[torch.Tensor, ...]:
    """TokenBatch arrays as tensors, in encoder argument order (trailing padding trimmed)."""
    return tuple(
        torch.from_numpy(np.ascontiguousarray(a)) for a in tokens.trimmed().feeds().values()
    )


def episode_loss(
    encoder: RelationalEncoder,
    head: ICLHead,
    tokens: TokenBatch,
    labels: Sequence[Any] | np.ndarray,
    task: str,
    rng: np.random.Generator,
    context_size: int,
    query_size: int,
) -> torch.Tensor | None:
    """Cross-entropy of one random context/query episode; None when it has no usable query.

    Args:
        encoder: the encoder (train mode as the caller chose).
        head: the ICL head.
        tokens: ``[A, S]`` tokens of A labelled anchors.
        labels: A labels (0/1, numbers or class names, as ``rfm_runtime.labels``; ranking:
            lists of items, one random candidate item per episode scored as binary).
        task: ``binary``, ``regression``, ``multiclass`` or ``ranking``.
        rng: episode sampler.
        context_size: context anchors N.
        query_size: query anchors Q.
    """
    a = tokens.num_anchors
    if a < 2:
        raise RfmError(f"training needs at least 2 labelled anchors, got {a}")
    n = min(context_size + query_size, a)
    pick = rng.permutation(a)[:n]
    n_ctx = max(1, n - min(query_size, n // 2))
    ctx_idx, q_idx = pick[:n_ctx], pick[n_ctx:]
    y = np.empty(a, dtype=object)
    for i, v in enumerate(labels):  # element-wise: list labels must stay lists
        y[i] = v
    if task == "ranking" and is_list_labels(list(y[ctx_idx])):
        item = _random_item(list(y[ctx_idx]), rng)  # one candidate per episode, as binary
        if item is None:
            return None
        y[:] = [None if v is None else float(item in [str(i) for i in v]) for v in y]
        task = "binary"
    ctx = prepare_labels(task, list(y[ctx_idx]), head.k)
    q_cls = query_classes(ctx, list(y[q_idx]))
    ctx_idx, q_idx, q_cls = ctx_idx[ctx.keep], q_idx[q_cls >= 0], q_cls[q_cls >= 0]
    if not len(q_idx):
        return None
    classes = ctx.classes
    if ctx.task == "multiclass":  # class ids are arbitrary names: teach the head that
        perm = rng.permutation(head.k)[: ctx.num_classes]
        classes, q_cls = perm[classes], perm[q_cls]
        num_classes = head.k
    else:
        num_classes = ctx.num_classes
    emb = encoder(*to_tensors(tokens.take(np.concatenate([ctx_idx, q_idx]))))
    logits, _ = head(
        emb[len(ctx_idx) :],
        emb[: len(ctx_idx)],
        torch.from_numpy(classes.astype(np.int64)),
        torch.from_numpy(ctx.values),
        torch.tensor([TASK_TYPES.index(ctx.head_task)]),
        torch.tensor([num_classes]),
    )
    return F.cross_entropy(logits, torch.from_numpy(q_cls.astype(np.int64)))


def _random_item(lists: list[Any], rng: np.random.Generator) -> str | None:
    items = sorted({str(i) for v in lists if v is not None for i in v})
    return items[int(rng.integers(len(items)))] if items else None


def train_icl(
    encoder: RelationalEncoder,
    head: ICLHead,
    tokens: TokenBatch,
    labels: Sequence[Any] | np.ndarray,
    task: str,
    config: TrainConfig = TrainConfig(),
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train encoder and head in place on episodes of one labelled set.

    Args:
        encoder, head: the net (e.g. freshly built or loaded from a checkpoint).
        tokens: ``[A, S]`` tokens of the labelled anchors.
        labels: their A labels.
        task: the task type.
        config: steps, learning rate, episode sizes, seed.
        on_step: called with ``(step, loss)`` after every step.

    Returns:
        The loss of every step that had a usable episode.
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    encoder.train()
    head.train()
    losses: list[float] = []
    start = time.monotonic()
    for step in range(config.steps):
        loss = episode_loss(
            encoder, head, tokens, labels, task, rng, config.context_size, config.query_size
        )
        if loss is None:
            continue
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.clip)
        opt.step()
        value = loss.item()
        losses.append(value)
        if on_step is not None:
            on_step(step, value)
        if step % 10 == 0:
            log.info("rfm train step %d loss %.4f (%.1fs)", step, value, time.monotonic() - start)
    encoder.eval()
    head.eval()
    return losses


def save_checkpoint(
    path: str | Path, encoder: RelationalEncoder, head: ICLHead, meta: dict[str, Any] | None = None
) -> Path:
    """Write ``{net_config, encoder, head, meta}`` with ``torch.save``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "net_config": encoder.cfg.to_dict(),
        "encoder": encoder.state_dict(),
        "head": head.state_dict(),
        "meta": meta or {},
    }
    torch.save(state, path)
    return path


#: Parameters a checkpoint may lack: they start at zero, where they leave the net's output as
#: it was without them (contract 1 checkpoints have no ``value_aux`` projection, contract 3
#: ones no ``row_counts`` projection, checkpoints before phase 8 no ``anchor_time`` one).
NEUTRAL_PARAMS = ("embed.aux.", "embed.counts.", "anchor_time.", "ridge_scale")


def load_checkpoint(path: str | Path) -> tuple[RelationalEncoder, ICLHead, dict[str, Any]]:
    """Inverse of :func:`save_checkpoint` (also reads pretraining checkpoints):
    ``(encoder, head, meta)`` in eval mode."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    cfg = NetConfig.from_dict(state["net_config"])
    encoder, head = RelationalEncoder(cfg), ICLHead(cfg)
    load_weights(encoder, head, state, str(path))
    encoder.eval()
    head.eval()
    return encoder, head, dict(state.get("meta", {}))


def load_weights(
    encoder: RelationalEncoder, head: ICLHead, state: dict[str, Any], where: str
) -> list[str]:
    """Copy a checkpoint's ``encoder``/``head`` weights into a net of the same NetConfig.

    Returns:
        The parameters the checkpoint lacks (only :data:`NEUTRAL_PARAMS` may be missing;
        they keep their zero initialisation).

    Raises:
        RfmError: on another NetConfig, unexpected weights or other missing weights.
    """
    if NetConfig.from_dict(state["net_config"]) != encoder.cfg:
        raise RfmError(f"{where}: the checkpoint holds a net with another NetConfig")
    missing: list[str] = []
    for part, module in (("encoder", encoder), ("head", head)):
        result = module.load_state_dict(state[part], strict=False)
        bad = [k for k in result.missing_keys if not k.startswith(NEUTRAL_PARAMS)]
        if result.unexpected_keys or bad:
            raise RfmError(
                f"{where}: {part} weights do not fit this net (unexpected "
                f"{result.unexpected_keys}, missing {bad})"
            )
        missing += [f"{part}.{k}" for k in result.missing_keys]
    return missing


def build_net(cfg: NetConfig | None = None, seed: int = 0) -> tuple[RelationalEncoder, ICLHead]:
    """A freshly initialised encoder and head (seeded)."""
    torch.manual_seed(seed)
    cfg = cfg or NetConfig()
    return RelationalEncoder(cfg), ICLHead(cfg)


def train_config_dict(config: TrainConfig) -> dict[str, Any]:
    """TrainConfig as a plain dict, for checkpoint metadata."""
    return asdict(config)
