"""The pretraining driver: episodes -> AdamW steps, evaluation, log, checkpoint, export.

Every step draws one task from the training pool (:class:`~dbt_rfm.pretrain.sources.DataPool`)
and one time-split episode of it, and takes one AdamW step on the queries' cross-entropy.
Every ``eval_every`` steps (and at the last) it measures zero-shot metrics on the held-out
tasks, appends a line to ``<out>/log.jsonl`` and replaces ``<out>/checkpoint.pt``. Ctrl-C
saves a checkpoint at the last completed step; ``resume=True`` continues from the checkpoint
exactly (weights, optimizer, step, RNG states, and the data pool, which is a function of the
step). At the end the net is exported as an ONNX artifact ``<out>/rfm-small.*.onnx``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dbt_rfm.nn.export import export_artifact
from dbt_rfm.nn.train import build_net, load_weights
from dbt_rfm.pretrain import checkpoint
from dbt_rfm.pretrain.config import PretrainConfig
from dbt_rfm.pretrain.episode import episode_loss
from dbt_rfm.pretrain.evaluate import evaluate
from dbt_rfm.pretrain.sources import DataPool

log = logging.getLogger("dbt_rfm")

LOG = "log.jsonl"
ARTIFACT = "rfm-small"


@dataclass(frozen=True)
class PretrainResult:
    """What a run left behind.

    Attributes:
        step: completed steps.
        interrupted: True when stopped by Ctrl-C before ``steps``.
        checkpoint: the resume checkpoint.
        artifact: the exported artifact prefix (None when interrupted).
        last_eval: the last evaluation's metrics by group.
        seconds_per_step: mean wall seconds per training step in this session (data
            preparation excluded).
        cpu_seconds_per_step: mean process CPU seconds per training step (all threads).
    """

    step: int
    interrupted: bool
    checkpoint: Path
    artifact: Path | None
    last_eval: dict[str, dict[str, float]]
    seconds_per_step: float
    cpu_seconds_per_step: float


def run_pretrain(
    config: PretrainConfig,
    out: str | Path,
    work_dir: str | Path,
    resume: bool = False,
    echo: Callable[[str], None] = print,
    on_step: Callable[[int, float], None] | None = None,
) -> PretrainResult:
    """Pretrain (or resume) and export.

    Args:
        config: the run's settings.
        out: output folder: ``log.jsonl``, ``checkpoint.pt``, the artifact.
        work_dir: cache of prepared tasks.
        resume: continue from ``<out>/checkpoint.pt``.
        echo: where progress lines go.
        on_step: called with ``(step, loss)`` after every completed step (tests use it to
            interrupt a run).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    encoder, head = build_net(config.net_config(), seed=config.seed)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    state = checkpoint.RunState(0, encoder, head, opt, np.random.default_rng(config.seed))
    if resume:
        checkpoint.load(out, state, config.data_key())
        _truncate_log(out / LOG, state.step)
        echo(f"pretrain: resumed at step {state.step} from {out / checkpoint.CHECKPOINT}")
    else:
        (out / LOG).unlink(missing_ok=True)
        torch.manual_seed(config.seed)
        if config.init_from:
            blob = torch.load(config.init_from, map_location="cpu", weights_only=True)
            fresh = load_weights(encoder, head, blob, config.init_from)
            echo(f"pretrain: warm start from {config.init_from} (zero-initialised: {fresh})")
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    pool = DataPool(config, Path(work_dir), echo)
    heldout = pool.eval_groups()
    encoder.train()
    head.train()
    losses: list[float] = []
    step_time, step_cpu, step_count, last_eval = 0.0, 0.0, 0, {}
    session_start = time.monotonic() - state.elapsed
    rngs = checkpoint.rng_snapshot(state)
    if state.step == 0:  # the untrained net's zero-shot metrics: the curve's origin
        last_eval = evaluate(encoder, head, heldout, config.context_size)
        _log(out / LOG, state, [], last_eval, float("nan"), float("nan"))
        echo(f"pretrain: step 0 eval {json.dumps(last_eval)}")
    try:
        while state.step < config.steps:
            tasks = pool.train_tasks(state.step)  # outside the timed part: cached after once
            t0, c0 = time.monotonic(), time.process_time()
            task = tasks[int(state.rng.integers(len(tasks)))]
            loss = episode_loss(
                encoder,
                head,
                task,
                state.rng,
                config.context_size,
                config.query_size,
                flip_binary=config.flip_binary,
            )
            if loss is not None:
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, config.clip)
                opt.step()
                losses.append(loss.item())
            state.step += 1
            rngs = checkpoint.rng_snapshot(state)  # a Ctrl-C from here on keeps this step
            step_time += time.monotonic() - t0
            step_cpu += time.process_time() - c0
            step_count += 1
            state.elapsed = time.monotonic() - session_start
            if on_step is not None:
                on_step(state.step, losses[-1] if losses else float("nan"))
            if state.step % config.print_every == 0:
                echo(_progress(state, config, losses, step_time / step_count))
            if state.step % config.eval_every == 0 or state.step == config.steps:
                last_eval = evaluate(encoder, head, heldout, config.context_size)
                state.elapsed = time.monotonic() - session_start
                _log(
                    out / LOG,
                    state,
                    losses,
                    last_eval,
                    step_time / step_count,
                    step_cpu / step_count,
                )
                checkpoint.save(out, state, config.data_key())
                losses = []
                echo(f"pretrain: step {state.step} eval {json.dumps(last_eval)}")
    except KeyboardInterrupt:  # weights are those of the last completed step, bar a race
        state.elapsed = time.monotonic() - session_start
        path = checkpoint.save(out, state, config.data_key(), rngs=rngs)
        echo(f"pretrain: interrupted at step {state.step}; saved {path}; continue with --resume")
        return PretrainResult(
            state.step,
            True,
            path,
            None,
            last_eval,
            _mean(step_time, step_count),
            _mean(step_cpu, step_count),
        )
    encoder.eval()
    head.eval()
    enc_path, _ = export_artifact(encoder, head, out / ARTIFACT)
    echo(f"pretrain: done, {state.step} steps in {state.elapsed:.0f}s; artifact {out / ARTIFACT}")
    return PretrainResult(
        state.step,
        False,
        out / checkpoint.CHECKPOINT,
        out / ARTIFACT,
        last_eval,
        _mean(step_time, step_count),
        _mean(step_cpu, step_count),
    )


def _mean(total: float, count: int) -> float:
    return total / count if count else float("nan")


def _progress(
    state: checkpoint.RunState, config: PretrainConfig, losses: list[float], sps: float
) -> str:
    recent = losses[-config.print_every :]
    loss = float(np.mean(recent)) if recent else float("nan")
    eta = (config.steps - state.step) * sps
    return (
        f"pretrain: step {state.step}/{config.steps} loss {loss:.4f} "
        f"{sps:.2f}s/step elapsed {state.elapsed:.0f}s eta {eta:.0f}s"
    )


def _log(
    path: Path,
    state: checkpoint.RunState,
    losses: list[float],
    metrics: dict[str, dict[str, float]],
    sps: float,
    cpu_sps: float,
) -> None:
    row = {
        "step": state.step,
        "loss": round(float(np.mean(losses)), 5) if losses else None,
        "metrics": metrics,
        "elapsed_s": round(state.elapsed, 1),
        "s_per_step": round(sps, 4) if np.isfinite(sps) else None,
        "cpu_s_per_step": round(cpu_sps, 4) if np.isfinite(cpu_sps) else None,
    }
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past the checkpoint's step (written just before a kill)."""
    if not path.is_file():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [r for r in rows if json.loads(r)["step"] <= step]
    path.write_text("".join(r + "\n" for r in kept))
