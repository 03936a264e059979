"""The resume checkpoint: one file, replaced atomically, holding everything a run needs.

``<out>/checkpoint.pt`` = net config, encoder and head weights, optimizer state, the number of
completed steps, the episode RNG state (numpy), torch's RNG state, elapsed seconds and the
run's data settings. It is written to a temporary file and renamed over the old one, so a
kill at any moment leaves either the previous checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dbt_rfm.errors import RfmError
from dbt_rfm.nn.config import NetConfig
from dbt_rfm.nn.encoder import RelationalEncoder
from dbt_rfm.nn.icl_head import ICLHead

CHECKPOINT = "checkpoint.pt"


@dataclass
class RunState:
    """The mutable state of a run.

    Attributes:
        step: completed steps.
        encoder, head: the net.
        optimizer: AdamW over encoder and head parameters.
        rng: episode sampler.
        elapsed: seconds spent in this run so far, over all its sessions.
    """

    step: int
    encoder: RelationalEncoder
    head: ICLHead
    optimizer: torch.optim.Optimizer
    rng: np.random.Generator
    elapsed: float = 0.0


def rng_snapshot(state: RunState) -> dict[str, Any]:
    """The RNG states (numpy episode sampler, torch) as they are now."""
    return {"numpy": state.rng.bit_generator.state, "torch": torch.get_rng_state()}


def save(
    out: Path, state: RunState, data_key: dict[str, Any], rngs: dict[str, Any] | None = None
) -> Path:
    """Write the checkpoint atomically; ``rngs`` overrides the RNG states (see
    :func:`rng_snapshot`) when the state was taken at the start of an interrupted step."""
    rngs = rngs or rng_snapshot(state)
    blob = {
        "step": state.step,
        "net_config": state.encoder.cfg.to_dict(),
        "encoder": state.encoder.state_dict(),
        "head": state.head.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "numpy_rng": rngs["numpy"],
        "torch_rng": rngs["torch"],
        "elapsed": state.elapsed,
        "data_key": data_key,
    }
    path = Path(out) / CHECKPOINT
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{CHECKPOINT}.tmp{os.getpid()}")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return path


def load(out: Path, state: RunState, data_key: dict[str, Any]) -> None:
    """Restore ``state`` in place from ``<out>/checkpoint.pt``.

    Raises:
        RfmError: when there is no checkpoint, or it was written with other data or net
            settings (resuming would silently train on a different mix).
    """
    path = Path(out) / CHECKPOINT
    if not path.is_file():
        raise RfmError(f"--resume: no checkpoint at {path}; start without --resume")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    saved = blob.get("data_key", {})
    diff = sorted(k for k in set(saved) | set(data_key) if saved.get(k) != data_key.get(k))
    if diff:
        raise RfmError(
            f"--resume: {path} was written with other settings for {', '.join(diff)} "
            f"(saved {[saved.get(k) for k in diff]}, now {[data_key.get(k) for k in diff]})"
        )
    if NetConfig.from_dict(blob["net_config"]) != state.encoder.cfg:
        raise RfmError(f"--resume: {path} holds a net with another NetConfig")
    state.encoder.load_state_dict(blob["encoder"])
    state.head.load_state_dict(blob["head"])
    state.optimizer.load_state_dict(blob["optimizer"])
    state.rng.bit_generator.state = blob["numpy_rng"]
    torch.set_rng_state(blob["torch_rng"])
    state.step = int(blob["step"])
    state.elapsed = float(blob["elapsed"])
