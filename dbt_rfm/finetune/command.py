"""``dbt-rfm finetune``: fine-tune the net on one declared target of a dbt-built DuckDB file.

Reads the target's labelled context anchors and their cells, splits them by time, fine-tunes
encoder and ICL head from the base checkpoint with early stopping, fits a tree head on the
result for a binary, regression or ranking target (:mod:`dbt_rfm.finetune.trees`; kept when it
beats the net on validation) and, when the steps changed the net, on the base net too (the
base net with its trees is kept instead when it scores better on validation; decision 0018),
and writes a new artifact ``<out>/<target>-<hash>.*.onnx`` plus its report
``<out>/<target>-<hash>.finetune.json``; prints the command that scores with it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from dbt_rfm.errors import RfmError
from dbt_rfm.finetune.config import FinetuneConfig

#: The pretrained checkpoint that ships with the package.
DEFAULT_BASE = Path(__file__).resolve().parent.parent / "weights" / "rfm-small.pt"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``finetune`` subcommand's flags."""
    p.add_argument("--target", required=True, help="a target declared in meta.rfm.targets")
    p.add_argument("--duckdb", required=True, help="the DuckDB file `dbt build` wrote")
    p.add_argument(
        "--out", required=True, help="output folder (artifact and its .finetune.json report)"
    )
    p.add_argument(
        "--base", default=None, help=f"torch checkpoint to start from (default {DEFAULT_BASE})"
    )
    d = FinetuneConfig()
    p.add_argument(
        "--max-steps", type=int, default=None, help=f"most steps (default {d.max_steps})"
    )
    p.add_argument(
        "--patience",
        type=int,
        default=None,
        help=f"validations without improvement (default {d.patience})",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help=f"latest share held out (default {d.val_fraction})",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        default=None,
        help=f"steps between validations (default {d.eval_every})",
    )
    p.add_argument(
        "--context-size",
        type=int,
        default=None,
        help=f"context anchors per episode (default {d.context_size})",
    )
    p.add_argument(
        "--max-anchors",
        type=int,
        default=None,
        help=f"most labelled anchors read, a seeded subsample (default {d.max_anchors})",
    )
    p.add_argument("--lr", type=float, default=None, help=f"AdamW learning rate (default {d.lr})")
    p.add_argument("--threads", type=int, default=None, help="torch and LightGBM threads")
    p.add_argument(
        "--trees",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fit a tree head on the net (binary, regression and ranking targets; kept when it "
        "beats the net on validation) and on the pretrained net (written instead when it scores "
        "better; default on)",
    )
    p.add_argument(
        "--aggregates",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the tree head of a binary or regression target also reads the warehouse's "
        "time-aware aggregates over the declared links (default on)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of episodes and subsamples")
    p.add_argument("--schema", default=None, help="schema of the rfm_* models (default: found)")


@dataclass(frozen=True)
class FinetuneRun:
    """What ``dbt-rfm finetune`` left behind.

    Attributes:
        artifact: the new artifact's prefix.
        report: the contents of the report (``<artifact>.finetune.json``).
        report_path: its path.
    """

    artifact: Path
    report: dict[str, Any]
    report_path: Path


def run_finetune(
    target: str,
    duckdb_path: str | Path,
    out: str | Path,
    base: str | Path | None = None,
    config: FinetuneConfig | None = None,
    schema: str | None = None,
    echo: Callable[[str], None] = print,
) -> FinetuneRun:
    """Fine-tune on ``target`` and write the artifact and report (see the module docstring).

    Args:
        target: the target's name (a row of ``rfm_targets``).
        duckdb_path: the DuckDB file.
        out: output folder.
        base: the base torch checkpoint (default :data:`DEFAULT_BASE`).
        config: a :class:`~dbt_rfm.finetune.config.FinetuneConfig` (default settings if None).
        schema: schema of the package models (default: the one schema holding all of them).
        echo: receives progress lines.

    Raises:
        RfmError: unknown target, missing tables or base checkpoint, too little data.
    """
    from rfm_runtime.session import RfmSession
    from rfm_runtime.trees import TREE_TASKS, NamedInputs

    from dbt_rfm.aggregates import AGGREGATE_TASKS
    from dbt_rfm.finetune.artifact import write_artifact, write_report
    from dbt_rfm.finetune.loop import finetune_arrays
    from dbt_rfm.finetune.split import as_slice, split_by_time
    from dbt_rfm.finetune.trees import TreeFit, choose_net, fit_trees
    from dbt_rfm.finetune.warehouse import (
        cell_names,
        connect,
        find_schema,
        label_known,
        read_aggregates,
        read_history,
        read_labelled,
        read_target,
    )
    from dbt_rfm.nn.encoder import RelationalEncoder
    from dbt_rfm.nn.export import export_artifact
    from dbt_rfm.nn.icl_head import ICLHead
    from dbt_rfm.nn.train import load_checkpoint

    config = config or FinetuneConfig()
    start = time.monotonic()
    base_path = Path(base) if base else DEFAULT_BASE
    if not base_path.is_file():
        raise RfmError(
            f"finetune: no base checkpoint at {base_path}; pass --base (a checkpoint.pt written "
            "by `dbt-rfm pretrain` or dbt_rfm.nn.train.save_checkpoint)"
        )
    try:
        encoder, head, _ = load_checkpoint(base_path)
    except (OSError, RuntimeError, KeyError) as exc:
        raise RfmError(f"finetune: cannot load the base checkpoint {base_path}: {exc}") from exc
    con = connect(duckdb_path)
    try:
        found = find_schema(con, schema)
        t = read_target(con, found, target)
        data = read_labelled(
            con, found, t, encoder.cfg.tokenizer(), config.max_anchors, config.seed
        )
        known = label_known(con, found, target, data.anchor_us)
        history = read_history(con, found, t)
        names = cell_names(con, found, encoder.cfg.tokenizer())
        table = None
        if config.trees and config.aggregates and t.task in AGGREGATE_TASKS:
            table = read_aggregates(con, found, t, data.anchors, echo)
        aggregates = None if table is None else NamedInputs(table)  # shared by both tree fits
        del table
    finally:
        con.close()
    times = data.anchor_us
    train, val = split_by_time(times, config.val_fraction, f"target '{target}'")
    echo(
        f"finetune {target}: {len(train)} training and {len(val)} validation anchors "
        f"({t.task}), base {base_path}"
    )
    res = finetune_arrays(
        encoder,
        head,
        data.tokens.take(as_slice(train)),  # in time order, so views, not copies
        [data.labels[i] for i in train],
        times[train],
        data.tokens.take(as_slice(val)),
        [data.labels[i] for i in val],
        times[val],
        t.task,
        config,
        top_k=t.top_k or 10,
        name=target,
        train_known=None if known is None else known[train],
        echo=echo,
    )
    provenance: dict[str, Any] = {"base": str(base_path), "target": target, "task": t.task}
    net, step = (res.encoder, res.head), res.best_step

    def fit(net: tuple[RelationalEncoder, ICLHead]) -> TreeFit:
        with tempfile.TemporaryDirectory(prefix="rfm_ft_") as tmp:
            prefix = Path(tmp) / "net"
            export_artifact(*net, prefix)
            return fit_trees(
                RfmSession.open(prefix, threads=config.threads), t.task, target, data.tokens,
                data.anchors, data.labels, times if known is None else known, train, val,
                history=history, aggregates=aggregates, column_names=names, seed=config.seed,
                threads=config.threads, echo=echo,
            )  # fmt: skip

    fitted = base_fit = None
    if config.trees and t.task in TREE_TASKS:
        net, fitted, step, base_fit = choose_net(
            fit, net, lambda: load_checkpoint(base_path)[:2], step, t.task,
            lambda line: echo(f"finetune {target}: {line}"),
        )  # fmt: skip
    provenance["best_step"] = step
    prefix = write_artifact(
        *net, out, target, provenance, trees=None if fitted is None else fitted.for_net
    )
    report = {
        "target": target,
        "task": t.task,
        "base": str(base_path),
        "duckdb": str(duckdb_path),
        "artifact": str(prefix),
        "steps": res.steps,
        "best_step": res.best_step,
        "kept_pretrained": step == 0 and res.best_step > 0,
        "stopped_early": res.stopped_early,
        "metric": res.metric,
        "before": res.before,
        "after": res.after,
        "n_train": res.n_train,
        "n_val": res.n_val,
        "history": res.history,
        "trees": None if fitted is None else fitted.report,
        "pretrained_trees": None if base_fit is None else base_fit.report,
        "config": config.to_dict(),
        "seconds": round(time.monotonic() - start, 2),
    }
    path = write_report(prefix, report)
    return FinetuneRun(prefix, report, path)


def config_from_args(args: argparse.Namespace) -> FinetuneConfig:
    """The defaults, overridden by every FinetuneConfig field given as a flag."""
    raw: dict[str, Any] = {
        f.name: getattr(args, f.name)
        for f in fields(FinetuneConfig)
        if getattr(args, f.name, None) is not None
    }
    return FinetuneConfig.from_dict(raw)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; returns the exit status."""
    result = run_finetune(
        args.target,
        args.duckdb,
        args.out,
        base=args.base,
        config=config_from_args(args),
        schema=args.schema,
        echo=lambda line: print(line, flush=True),
    )
    r = result.report
    print(
        f"finetune {r['target']}: {r['metric']} {r['before'].get(r['metric'])} -> "
        f"{r['after'].get(r['metric'])}, val_loss {r['before']['val_loss']} -> "
        f"{r['after']['val_loss']} (best step {r['best_step']} of {r['steps']}, "
        f"{r['seconds']}s)"
    )
    if r["trees"]:
        tr = r["trees"]
        if "skipped" in tr:
            print(f"tree head: skipped: {tr['skipped']}")
        else:
            verdict = "kept" if tr["kept"] else "dropped: the net alone is better"
            print(f"tree head: validation {tr['metric']} {tr['net']} -> {tr['trees']} ({verdict})")
    if r["kept_pretrained"]:
        print("kept the pretrained net: with its tree head it scores better on validation")
    print(f"artifact: {result.artifact}")
    print(f"report: {result.report_path}")
    print(
        "score with it (demo project, in integration_tests/):\n"
        f"  RFM_ARTIFACT={result.artifact.resolve()} dbt build --select rfm_predictions"
    )
    return 0
