"""PretrainConfig: every setting of a pretraining run, lifted once from flags or a JSON file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from dbt_rfm.errors import RfmError, did_you_mean
from dbt_rfm.nn.config import NetConfig
from dbt_rfm.pretrain.tasks import PrepSettings
from dbt_rfm.synth.config import SynthConfig


def _check_keys(raw: Mapping[str, Any], allowed: list[str], what: str) -> None:
    for key in raw:
        if key not in allowed:
            raise RfmError(f"{what}: unknown key '{key}'{did_you_mean(str(key), allowed)}")


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of one pretraining run.

    Attributes:
        steps: total optimiser steps (one episode each).
        eval_every: steps between evaluations, log lines and checkpoints.
        seed: seeds the training databases, episodes and the net's initialisation.
        threads: torch intra-op threads (None: torch's default).
        context_size: context anchors per training episode.
        query_size: query anchors per training episode.
        lr, weight_decay, clip: AdamW learning rate, weight decay, gradient-norm clip.
        pool_size: synthetic databases in the training pool at any step.
        refresh_every: steps between replacing the oldest synthetic database by a new one.
        eval_dbs: held-out synthetic databases (seeds disjoint from training).
        real: add jaffle shop and TPC-H tasks (training and held-out targets), when their
            generators are installed.
        jaffle_scale: market scale of the jaffle shop.
        tpch_scale_factor: TPC-H scale factor.
        print_every: steps between progress lines.
        synth: SynthConfig overrides (e.g. smaller databases).
        net: NetConfig overrides.
        prep: PrepSettings overrides (targets per database, anchor pools).
        flip_binary: share of binary training episodes whose classes 0 and 1 swap (context
            and queries alike), so that which class is "positive" must be read from the
            context, as multiclass class ids already are; 0 keeps the labels' own polarity.
        init_from: a checkpoint (pretraining or fine-tuning) whose weights start a fresh run
            (warm start: new optimiser, step 0; weights the checkpoint lacks, such as a new
            input projection, start at zero). Ignored by ``--resume``.
    """

    steps: int = 1000
    eval_every: int = 100
    seed: int = 0
    threads: int | None = None
    context_size: int = 64
    query_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    clip: float = 1.0
    pool_size: int = 6
    refresh_every: int = 25
    eval_dbs: int = 4
    real: bool = True
    jaffle_scale: float = 0.3
    tpch_scale_factor: float = 0.01
    print_every: int = 10
    synth: dict[str, Any] = field(default_factory=dict)
    net: dict[str, Any] = field(default_factory=dict)
    prep: dict[str, Any] = field(default_factory=dict)
    flip_binary: float = 0.0
    init_from: str | None = None

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "eval_every",
            "context_size",
            "query_size",
            "pool_size",
            "refresh_every",
            "print_every",
        ):
            if int(getattr(self, name)) < 1:
                raise RfmError(f"pretrain: {name} must be >= 1, found {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise RfmError(f"pretrain: threads must be >= 1, found {self.threads}")
        if not 0.0 <= self.flip_binary <= 1.0:
            raise RfmError(f"pretrain: flip_binary must be in [0, 1], found {self.flip_binary}")
        self.synth_config()
        self.net_config()
        self.prep_settings()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PretrainConfig:
        """Build from a mapping; unknown keys are errors that suggest the right key."""
        _check_keys(raw, [f.name for f in fields(cls)], "pretrain config")
        return cls(**raw)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (inverse of :meth:`from_dict`)."""
        return asdict(self)

    def synth_config(self) -> SynthConfig:
        """The synthetic generator's settings."""
        return SynthConfig.from_dict(self.synth)

    def net_config(self) -> NetConfig:
        """The net's settings."""
        return NetConfig.from_dict(self.net)

    def prep_settings(self) -> PrepSettings:
        """Task preparation settings."""
        _check_keys(self.prep, [f.name for f in fields(PrepSettings)], "pretrain prep")
        return PrepSettings(**self.prep)

    def data_key(self) -> dict[str, Any]:
        """Settings that fix the data and the net's shape: a resumed run must match them."""
        keep = (
            "seed",
            "pool_size",
            "refresh_every",
            "eval_dbs",
            "real",
            "jaffle_scale",
            "tpch_scale_factor",
            "synth",
            "net",
            "prep",
            "context_size",
            "query_size",
        )
        return {k: getattr(self, k) for k in keep}
