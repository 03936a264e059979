"""FinetuneConfig: the settings of one fine-tuning run, lifted once from flags or a mapping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from dbt_rfm.errors import RfmError, did_you_mean


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of one fine-tuning run.

    Attributes:
        max_steps: most optimiser steps (one training episode each); 0 keeps the base net
            (and fits only the tree head).
        eval_every: steps between validations (and progress lines).
        patience: validations without a better validation loss before stopping early.
        val_fraction: share of the labelled anchors, the latest by anchor time, held out for
            validation (anchors with the same time stay on one side).
        lr, weight_decay, clip: AdamW learning rate, weight decay, gradient-norm clip.
        context_size: context anchors per episode (training and validation).
        query_size: query anchors per training episode.
        val_queries: most validation anchors scored per validation (a fixed subsample).
        max_anchors: most labelled anchors read from the warehouse (a seeded subsample).
        seed: seeds episodes, subsamples and dropout.
        threads: torch intra-op threads (None: torch's default).
        trees: fit a tree head on the fine-tuned net (binary, regression and ranking targets;
            :mod:`dbt_rfm.finetune.trees`), kept when it beats the net on validation.
        aggregates: the tree head of a binary or regression target also reads the
            warehouse's time-aware aggregates over the declared links
            (:mod:`dbt_rfm.aggregates`, decision 0020); scoring computes them again.
    """

    max_steps: int = 2000
    eval_every: int = 50
    patience: int = 6
    val_fraction: float = 0.2
    lr: float = 3e-4
    weight_decay: float = 0.01
    clip: float = 1.0
    context_size: int = 256
    query_size: int = 128
    val_queries: int = 512
    max_anchors: int = 100_000
    seed: int = 0
    threads: int | None = None
    trees: bool = True
    aggregates: bool = True

    def __post_init__(self) -> None:
        if int(self.max_steps) < 0:
            raise RfmError(f"finetune: max_steps must be >= 0, found {self.max_steps}")
        for name in (
            "eval_every",
            "patience",
            "context_size",
            "query_size",
            "val_queries",
            "max_anchors",
        ):
            if int(getattr(self, name)) < 1:
                raise RfmError(f"finetune: {name} must be >= 1, found {getattr(self, name)}")
        if not 0.0 < self.val_fraction < 1.0:
            raise RfmError(f"finetune: val_fraction must be in (0, 1), found {self.val_fraction}")
        if self.threads is not None and self.threads < 1:
            raise RfmError(f"finetune: threads must be >= 1, found {self.threads}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FinetuneConfig:
        """Build from a mapping; unknown keys are errors that suggest the right key."""
        names = [f.name for f in fields(cls)]
        for key in raw:
            if key not in names:
                raise RfmError(f"finetune config: unknown key '{key}'{did_you_mean(key, names)}")
        return cls(**raw)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (inverse of :meth:`from_dict`)."""
        return asdict(self)
