"""``dbt-rfm pretrain``: flags -> :class:`PretrainConfig` -> :func:`run_pretrain`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dbt_rfm.errors import RfmError

DEFAULT_WORK_DIR = "bench/.work"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``pretrain`` subcommand's flags."""
    p.add_argument("--steps", type=int, required=True, help="total training steps")
    p.add_argument("--out", required=True, help="output folder (log, checkpoint, artifact)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument(
        "--eval-every",
        type=int,
        default=None,
        help="steps between evaluations and checkpoints (default 100)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of data, episodes and net")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument(
        "--work-dir",
        default=DEFAULT_WORK_DIR,
        help=f"cache of prepared tasks (default {DEFAULT_WORK_DIR}, gitignored)",
    )
    p.add_argument(
        "--config", default=None, help="JSON file with more PretrainConfig settings (flags win)"
    )
    p.add_argument(
        "--init-from",
        default=None,
        help="warm start: begin a fresh run from this checkpoint's weights",
    )
    p.add_argument(
        "--no-real", action="store_true", help="synthetic databases only (no jaffle shop / TPC-H)"
    )


def _echo(line: str) -> None:
    print(line, flush=True)  # progress shows at once, also when stdout is a file


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; returns the exit status (130 when interrupted)."""
    from dbt_rfm.pretrain.config import PretrainConfig
    from dbt_rfm.pretrain.loop import run_pretrain

    raw = {}
    if args.config:
        try:
            raw = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as exc:
            raise RfmError(f"--config {args.config}: cannot read a JSON object: {exc}") from exc
    raw["steps"] = args.steps
    for flag, key in (("eval_every", "eval_every"), ("seed", "seed"), ("threads", "threads")):
        if getattr(args, flag) is not None:
            raw[key] = getattr(args, flag)
    if args.no_real:
        raw["real"] = False
    if args.init_from:
        raw["init_from"] = args.init_from
    config = PretrainConfig.from_dict(raw)
    result = run_pretrain(config, args.out, args.work_dir, resume=args.resume, echo=_echo)
    return 130 if result.interrupted else 0
