"""The fine-tuned arm: :func:`dbt_rfm.finetune.loop.finetune_arrays` from the pretrained torch
checkpoint on :data:`FT_TRAIN` training anchors (a seeded subsample over all anchor times, as
``dbt-rfm finetune`` reads), each label known at the end of its window, early stopping on the
validation split, then exported to ONNX; :func:`dbt_rfm.finetune.trees.fit_trees` fits the
tree head on the same anchors (kept when it
beats the net on validation); scored through the same serving path as the zero-shot arm (the
same contexts as zero-shot). ``$RFM_BENCH_FT_STEPS`` overrides the most optimiser steps (0:
the pretrained net with its tree head), ``$RFM_BENCH_FT_SEED`` the seed (subsample, episodes,
trees).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from rfm_runtime.session import RfmSession
from rfm_runtime.tokenize import TokenBatch, anchor_keys, time_us, tokenize
from rfm_runtime.trees import TREE_TASKS, TREES_SUFFIX, NamedInputs, name_labels

from bench.accuracy.arms import ArmContext, ArmResult, labels
from bench.accuracy.data import REPO
from bench.accuracy.ours import (
    BATCH,
    TARGET_COLUMNS,
    OursArm,
    anchor_cells,
    artifact_path,
    history,
    predict,
    prepare,
)
from dbt_rfm.aggregates import AGGREGATE_TASKS, target_aggregates
from dbt_rfm.errors import RfmError
from dbt_rfm.finetune.config import FinetuneConfig
from dbt_rfm.finetune.loop import finetune_arrays
from dbt_rfm.finetune.split import subsample
from dbt_rfm.finetune.trees import TreeFit, choose_net, fit_trees
from dbt_rfm.nn.export import contract_for, export_artifact
from dbt_rfm.nn.train import load_checkpoint
from dbt_rfm.spec import GraphSpec

#: FinetuneConfig's defaults (docs/finetuning.md) on 2 threads.
CONFIG = FinetuneConfig(
    threads=2,
    max_steps=int(os.environ.get("RFM_BENCH_FT_STEPS", FinetuneConfig.max_steps)),
    seed=int(os.environ.get("RFM_BENCH_FT_SEED", FinetuneConfig.seed)),
)
#: A static label (a flight's outcome) is known within a day of its anchor time.
STATIC_KNOWN = timedelta(days=1)
#: Training anchors fine-tuning sees: as many as ``dbt-rfm finetune`` reads by default
#: (``max_anchors``).
FT_TRAIN = CONFIG.max_anchors
#: Training anchors sampled and tokenized at a time.
TOKENIZE_CHUNK = 5_000


#: The shipped net's resume checkpoint (the torch weights of ``rfm-small``).
SHIPPED_CHECKPOINT = REPO / "dbt_rfm" / "weights" / "rfm-small.pt"


def checkpoint_path() -> Path:
    """The torch checkpoint fine-tuning starts from: ``$RFM_BENCH_CHECKPOINT``, else the
    artifact's ``.pt`` next to its ONNX files when there is one, else the shipped one."""
    env = os.environ.get("RFM_BENCH_CHECKPOINT")
    beside = artifact_path().with_suffix(".pt")
    path = Path(env) if env else beside if beside.is_file() else SHIPPED_CHECKPOINT
    if not path.is_file():
        raise RfmError(f"ours_finetuned: no checkpoint at {path}; set RFM_BENCH_CHECKPOINT")
    return path


def finetune_rows(n: int) -> np.ndarray:
    """Indices (ascending) of the training anchors fine-tuning reads: at most :data:`FT_TRAIN`,
    a seeded subsample over all anchor times, as ``dbt-rfm finetune`` reads its labels."""
    return subsample(n, FT_TRAIN, CONFIG.seed)


class Finetuned(OursArm):
    """Fine-tune on the training anchors, early-stop on val, score test (context = train)."""

    name = "ours_finetuned"

    def run(self, ctx: ArmContext) -> ArmResult:  # noqa: D102
        prep = prepare(ctx)
        task = ctx.splits.task
        t0 = time.perf_counter()
        encoder, head, _ = load_checkpoint(checkpoint_path())
        config = contract_for(encoder.cfg, "encoder").tokenizer_config(
            BATCH, TARGET_COLUMNS.get(task.name)
        )
        train = ctx.splits.train.take(pa.array(finetune_rows(ctx.splits.train.num_rows)))
        n = train.num_rows
        # the cells of a few thousand anchors at a time: those of 100,000 held at once
        # were the arm's peak memory; sampling is deterministic, so chunks change nothing
        chunks = [
            tokenize(anchor_cells(prep.index, part, task.entity_table), anchor_keys(part), config)
            for part in (train.slice(i, TOKENIZE_CHUNK) for i in range(0, n, TOKENIZE_CHUNK))
        ]
        chunks.append(tokenize(prep.cells["val"], anchor_keys(ctx.splits.val), config))
        tokens = TokenBatch.concat(chunks)
        del chunks
        parts: dict[str, Any] = {}
        for name, table, rows in (
            ("train", train, slice(0, n)),
            ("val", ctx.splits.val, slice(n, tokens.num_anchors)),
        ):
            y = labels(table, task.kind)
            y = y if task.kind == "ranking" else [float(v) for v in y]
            parts[name] = (tokens.take(rows), y, time_us(table.column("anchor_time")))  # views
        aggregates = warehouse_aggregates(ctx, prep.spec, train)
        named = None if aggregates is None else NamedInputs(aggregates)  # both tree fits
        t1 = time.perf_counter()
        (tr_tok, tr_y, tr_t), (va_tok, va_y, va_t) = parts["train"], parts["val"]
        window = 0 if task.window is None else task.window // timedelta(microseconds=1)
        result = finetune_arrays(
            encoder, head, tr_tok, tr_y, tr_t, va_tok, va_y, va_t, task.kind, CONFIG,
            name=task.name, train_known=tr_t + window,
        )  # fmt: skip
        t2 = time.perf_counter()
        trees: dict[str, Any] = {}
        step = result.best_step
        with tempfile.TemporaryDirectory(prefix="rfm_ft_") as tmp:
            prefix = Path(tmp) / "ft"
            net = (result.encoder, result.head)

            def fit(net: Any) -> TreeFit:  # no session held between the fits
                export_artifact(net[0], net[1], prefix)
                session = RfmSession.open(prefix)
                return _fit_trees(ctx, prep.spec, session, train, tokens, parts, named)

            fitted = None
            if CONFIG.trees and task.kind in TREE_TASKS:  # as dbt-rfm finetune (decision 0018)
                net, fitted, step, _ = choose_net(
                    fit, net, lambda: load_checkpoint(checkpoint_path())[:2], step, task.kind,
                    lambda line: print(f"finetune {task.name}: {line}", flush=True),
                )  # fmt: skip
                trees = fitted.report
            export_artifact(*net, prefix)
            model = None if fitted is None else fitted.for_net(prefix)
            if model is not None:
                prefix.with_name(prefix.name + TREES_SUFFIX).write_bytes(model)
            session = RfmSession.open(prefix)
            t3 = time.perf_counter()
            val, test, covered = predict(session, ctx, prep, aggregates)
        t4 = time.perf_counter()
        params = {
            "checkpoint": str(checkpoint_path()),
            "lr": CONFIG.lr,
            "steps": result.steps,
            "best_step": step,
            "stopped_early": result.stopped_early,
            "val_before": result.before,
            "val_after": result.after,
            "context": prep.contexts[-1].anchors.num_rows,
            "trained_on": train.num_rows,
            "coverage": round(covered, 4),
            "trees": trees,
            "aggregates": 0 if aggregates is None else aggregates.num_columns - 2,
        }
        seconds = {
            "features": prep.seconds + (t1 - t0),
            "train": (t2 - t1) + (t3 - t2),
            "score": t4 - t3,
        }
        return ArmResult(val, test, seconds, params)


def warehouse_aggregates(ctx: ArmContext, spec: GraphSpec, train: pa.Table) -> pa.Table | None:
    """The warehouse aggregates a binary or regression tree head reads (decision 0020), of
    the fine-tuning, validation and test anchors, over the demo's declared graph read from
    the bench database; None when fine-tuning reads none (``FinetuneConfig.aggregates``)."""
    task = ctx.splits.task
    if not (CONFIG.trees and CONFIG.aggregates) or task.kind not in AGGREGATE_TASKS:
        return None
    local = replace(spec, tables=tuple(replace(t, relation=f'"{t.name}"') for t in spec.tables))
    anchors = pa.concat_tables(
        [t.select(["entity_id", "anchor_time"]) for t in (train, ctx.splits.val, ctx.splits.test)]
    )
    return target_aggregates(ctx.con, local, task.entity_table, ctx.windows, anchors)


def _fit_trees(
    ctx: ArmContext,
    spec: GraphSpec,
    session: RfmSession,
    train: pa.Table,
    tokens: TokenBatch,
    parts: dict[str, Any],
    aggregates: NamedInputs | None,
) -> TreeFit:
    """The tree head on the fine-tuning anchors (train) and the validation split (``tokens``:
    both, in that order), each label known at the end of its window (static:
    :data:`STATIC_KNOWN` after its anchor)."""
    task = ctx.splits.task
    (_, tr_y, tr_t), (_, va_y, va_t) = parts["train"], parts["val"]
    after = (task.window or STATIC_KNOWN) // timedelta(microseconds=1)
    anchors = pa.concat_tables(
        [t.select(["entity_id", "anchor_time"]) for t in (train, ctx.splits.val)]
    )
    n = len(tr_y)
    tables = [t.name for t in spec.tables]
    names = name_labels(
        [*tables, *(c.name for t in spec.tables for c in t.columns)], session.tokenizer_config()
    )
    return fit_trees(
        session, task.kind, task.name, tokens, anchors,
        [*tr_y, *va_y], np.concatenate([tr_t, va_t]) + after,
        np.arange(n), np.arange(n, n + len(va_y)),
        history=history(ctx, spec, train, ctx.splits.val), aggregates=aggregates,
        column_names=names,
        max_context=ctx.max_context,
        seed=CONFIG.seed, threads=CONFIG.threads, echo=lambda line: print(line, flush=True),
    )  # fmt: skip
