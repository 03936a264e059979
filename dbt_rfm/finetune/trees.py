"""Fit the tree head of a fine-tuned artifact (:mod:`rfm_runtime.trees`, decisions 0011 and
0012).

The trees learn the target from the entity row's own values, aggregates of its linked rows, the
anchor embedding and the net's prediction. The net's prediction of an anchor must come from a
context the net could have had at that anchor's time, as in scoring, or the trees would learn to
trust a prediction that saw its own label. So the training anchors are cut into :data:`CHUNKS`
runs in time order; each run is predicted from a context of the anchors whose label was known by
the run's first anchor time (the most recent ``max_context`` of them), by the net and its
readout exactly as :func:`rfm_runtime.score.fit_predictor` scores; the first run has no context
and is not learnt from. The validation anchors are predicted from the training anchors known by
the first validation anchor time. LightGBM (fixed, light settings) early-stops on the validation
anchors, and the trees are kept only when they beat the net alone on the validation metric
(AUROC for a binary target, MAE for a regression target): fine-tuning never makes the validation
metric worse.

LightGBM and onnxmltools (the ``train`` extra) fit and convert the trees; scoring needs neither.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from rfm_runtime.labels import prepare_labels
from rfm_runtime.score import fit_predictor
from rfm_runtime.session import RfmSession
from rfm_runtime.tokenize import TokenBatch, anchor_keys
from rfm_runtime.trees import (
    TREE_TASKS,
    TREES_INPUT,
    TREES_KEY,
    TreeSpec,
    linked_columns,
    row_columns,
)

from dbt_rfm.errors import RfmError
from dbt_rfm.pretrain.evaluate import auroc

#: Runs in time order the training anchors are predicted in (the first has no context).
CHUNKS = 8
#: LightGBM's settings (the trees see at most ``max_anchors`` rows).
PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.5,
    "deterministic": True,
    "verbose": -1,
}
#: Leaves per tree: each is fitted, the best on validation is kept (decision 0013).
LEAVES = (15, 63)
MAX_ROUNDS = 2000
#: Fewest training anchors with a net prediction the trees are fitted on (else none is).
MIN_ROWS = 100
EARLY_STOP = 50
#: Anchors embedded per encoder run.
BATCH = 256


@dataclass(frozen=True)
class TreeFit:
    """A fitted tree head.

    Attributes:
        spec: what it reads and was fitted for (None when too few anchors had a prediction
            from an earlier context to fit on: then ``report["skipped"]`` says why).
        onnx: the converted model (spec in its metadata), or None when the trees were not
            fitted or did not beat the net alone on validation (then the artifact has no
            tree head).
        report: rounds, rows, validation metric of the net and of the trees, top features.
    """

    spec: TreeSpec | None
    onnx: bytes | None
    report: dict[str, Any]


def embed_all(session: RfmSession, tokens: TokenBatch) -> np.ndarray:
    """``float32[A, d]`` embeddings of every anchor of ``tokens``."""
    parts = [
        session.encode(tokens.take(np.arange(s, min(s + BATCH, tokens.num_anchors))))
        for s in range(0, tokens.num_anchors, BATCH)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, session.embedding_dim), np.float32)


def net_predictions(
    session: RfmSession,
    task: str,
    embedding: np.ndarray,
    anchors: pa.Table,
    times: np.ndarray,
    labels: Sequence[float],
    pool: np.ndarray,
    known_us: np.ndarray,
    queries: np.ndarray,
    at_us: int,
    history: pa.Table | None,
    max_context: int | None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The net's prediction ``float64[Q]`` (P(label) or value, after its readout) of the
    anchors ``queries`` from a context of the ``pool`` anchors known by ``at_us`` (the most
    recent by ``times``, the anchors' times in microseconds, at most ``max_context``), and its
    readout's inputs by name; NaN and none when fewer than two pool anchors are known then."""
    ctx = pool[known_us[pool] <= at_us]
    ctx = ctx[np.argsort(times[ctx], kind="stable")]
    if max_context is not None:
        ctx = ctx[-max_context:]
    if len(ctx) < 2:
        return np.full(len(queries), np.nan), {}
    values = [labels[i] for i in ctx]
    context_labels = anchors.take(pa.array(ctx)).append_column("label", pa.array(values))
    prepared = prepare_labels(task, values, session.contract.max_classes)
    context = embedding[ctx][prepared.keep]
    predict = fit_predictor(session, task, context, prepared, context_labels, history)
    keys = anchor_keys(anchors.take(pa.array(queries)))
    decoded = predict(embedding[queries], keys)
    out = decoded.probability if task == "binary" else decoded.prediction
    return np.asarray(out, np.float64), decoded.inputs


def fit_trees(
    session: RfmSession,
    task: str,
    target: str,
    tokens: TokenBatch,
    anchors: pa.Table,
    labels: Sequence[float],
    known_us: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    *,
    history: pa.Table | None = None,
    column_names: dict[tuple[int, ...], str] | None = None,
    max_context: int | None = None,
    seed: int = 0,
    threads: int | None = None,
    echo: Callable[[str], None] | None = None,
) -> TreeFit:
    """Fit the tree head of ``session``'s net on one target (module docstring).

    Args:
        session: the (fine-tuned) net, opened.
        task: ``binary`` or ``regression``; target: the target's name.
        tokens: tokens of every anchor; anchors: their ``entity_id, anchor_time``.
        labels: every anchor's label (binary 0/1, regression value).
        known_us: when each label became known, microseconds since the epoch.
        train, val: row indices of the training and validation anchors.
        history: the readout's history of the anchors (as scoring reads it), or None.
        column_names: hashed table and column name ids -> name, for the report.
        max_context: most context anchors per prediction (None: every known one).
        seed: LightGBM's seed; threads: its threads (None: LightGBM's default).
        echo: receives progress lines.

    Raises:
        RfmError: for a task the trees do not predict.
    """
    import lightgbm as lgb

    if task not in TREE_TASKS:
        raise RfmError(
            f"finetune: target '{target}': the tree head predicts {TREE_TASKS}, not {task}"
        )
    say = echo or (lambda _line: None)
    start = time.monotonic()
    y = np.asarray(labels, np.float64)
    embedding = embed_all(session, tokens)
    times = np.asarray(anchors.column("anchor_time").cast(pa.int64()).to_numpy())
    order = train[np.argsort(times[train], kind="stable")]
    net = np.full(len(y), np.nan)
    readout: dict[str, np.ndarray] = {}
    for run in [*np.array_split(order, CHUNKS), val]:
        if len(run):
            at = int(times[run].min())
            net[run], inputs = net_predictions(session, task, embedding, anchors, times,
                                               labels, train, known_us, run, at, history,
                                               max_context)  # fmt: skip
            for name, values in inputs.items():
                readout.setdefault(name, np.full(len(y), np.nan))[run] = values
    learn = train[np.isfinite(net[train])]
    if len(learn) < MIN_ROWS or not np.isfinite(net[val]).all():
        why = (
            f"{len(learn)} training anchors have a prediction from an earlier context, and "
            f"the tree head needs {MIN_ROWS} (label more anchors: raise anchors.max_context, "
            "or start anchors.spine earlier)"
        )
        say(f"finetune {target}: tree head skipped: {why}")
        skipped = {"kept": False, "skipped": why, "n_train": int(len(learn)), "n_val": len(val)}
        return TreeFit(None, None, skipped)
    say(f"finetune {target}: tree head: net predictions of {len(learn)} training and "
        f"{len(val)} validation anchors ({time.monotonic() - start:.0f}s)")  # fmt: skip
    fitted, labelled = tokens.take(learn), column_names or {}
    spec = TreeSpec(target, task, row_columns(fitted, labelled), session.embedding_dim,
                    session.model_version, linked_columns(fitted, labelled),
                    tuple(sorted(readout)))  # fmt: skip
    x = spec.features(tokens, embedding, net, readout)
    params = PARAMS | {"objective": "binary" if task == "binary" else "l1", "seed": seed}
    if threads:
        params["num_threads"] = threads
    cats = spec.categorical()
    dtrain = lgb.Dataset(x[learn], y[learn], categorical_feature=cats, free_raw_data=False)
    dval = lgb.Dataset(x[val], y[val], reference=dtrain, categorical_feature=cats)
    sign = 1.0 if task == "binary" else -1.0  # AUROC: higher is better; MAE: lower
    fits = []
    for leaves in LEAVES:
        model = lgb.train(params | {"num_leaves": leaves}, dtrain, MAX_ROUNDS,
                          valid_sets=[dval],
                          callbacks=[lgb.early_stopping(EARLY_STOP, verbose=False)])  # fmt: skip
        trees_val = model.predict(x[val], num_iteration=model.best_iteration)
        metric, before, after = _metric(task, y[val], net[val], np.asarray(trees_val, np.float64))
        fits.append((after, leaves, model))
    after, leaves, booster = max(fits, key=lambda f: sign * f[0])
    better = sign * (after - before) > 0
    gain = booster.feature_importance("gain", iteration=booster.best_iteration)
    names = spec.names()
    report = {
        "metric": metric,
        "net": round(before, 6),
        "trees": round(after, 6),
        "kept": bool(better),
        "rounds": int(booster.best_iteration),
        "leaves": leaves,
        "n_train": int(len(learn)),
        "n_val": int(len(val)),
        "top_features": [names[i] for i in np.argsort(-gain)[:8]],
        "seconds": round(time.monotonic() - start, 2),
    }
    say(f"finetune {target}: tree head: validation {metric} {before:.4f} (net) -> "
        f"{after:.4f} (trees, {leaves} leaves, {report['rounds']} rounds); "
        f"{'kept' if better else 'dropped: the net alone is better'}")  # fmt: skip
    return TreeFit(spec, _to_onnx(booster, spec) if better else None, report)


def _metric(
    task: str, y: np.ndarray, net: np.ndarray, trees: np.ndarray
) -> tuple[str, float, float]:
    if task == "binary":
        a, b = auroc(y, net), auroc(y, trees)
        if a is None or b is None:
            raise RfmError("finetune: the validation anchors hold one class only; no AUROC")
        return "auroc", a, b
    return "mae", float(np.mean(np.abs(net - y))), float(np.mean(np.abs(trees - y)))


def _to_onnx(booster: Any, spec: TreeSpec) -> bytes:
    """The booster as ONNX with its spec in the metadata (best iteration only)."""
    import lightgbm as lgb
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    text = booster.model_to_string(num_iteration=booster.best_iteration)
    # onnxmltools converts L2 regressors only; an L1 model's trees and output are the same
    text = text.replace("objective=regression_l1", "objective=regression")
    text = text.replace("objective=l1", "objective=regression")
    model = convert_lightgbm(
        lgb.Booster(model_str=text),
        initial_types=[(TREES_INPUT, FloatTensorType([None, spec.width]))],
        zipmap=False,
        target_opset=15,
    )
    entry = model.metadata_props.add()
    entry.key, entry.value = TREES_KEY, spec.to_json()
    return bytes(model.SerializeToString())
