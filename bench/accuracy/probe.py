"""Where the foundation model loses: LightGBM on its frozen zero-shot embeddings, against
LightGBM on the entity's own columns and on uncapped row counts.

Usage (repo root)::

    python -m bench.accuracy.probe [--tasks plane_delay_7d,...] [--artifact PREFIX]
                                   [--max-eval N] [--hour]

For each task, the encoder embeds the most recent ``FT_TRAIN`` training anchors and the
val/test anchors (all of them, as in the README table; ``--max-eval`` subsamples). LightGBM
(the same light setting as the baselines' smaller grid point) learns the label, early-stopped
on val, from each of these inputs, and the test metric is printed per input:

* ``embedding``: the zero-shot anchor embedding;
* ``entity``: the entity row's own columns (``lgbm_entity``'s inputs);
* ``counts``: how many rows each one-hop child table holds for the entity in the last 1, 7
  and 30 days and in all history, uncapped (``lgbm_aggregates``'s count features; the
  sampler caps a plane's flights at 16, decision 0004);
* ``embedding+counts``, ``entity+counts`` and ``entity+embedding``.

If the embedding probe is far better than ``ours_zero_shot``, the ICL head wastes what the
encoder knows; if it is as bad, the encoder never saw the signal; the other inputs say which
signal. A diagnostic, not an arm: it trains on labels. ``--hour`` asks instead whether the
embedding knows the anchor's hour of day (test R^2 of LightGBM; the hour alone gives
flight_delayed_15 an AUROC of about 0.64).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import duckdb
import lightgbm as lgb
import numpy as np
import pyarrow as pa
from rfm_runtime.score import embed
from rfm_runtime.session import RfmSession
from rfm_runtime.tokenize import anchor_keys

from bench.accuracy.arms import ArmContext, entity_matrix, labels, stacked_splits
from bench.accuracy.data import DEFAULT_DB, REPO, ensure_database
from bench.accuracy.graph import flights_graph
from bench.accuracy.ours import (
    BATCH,
    TARGET_COLUMNS,
    anchor_cells,
    artifact_path,
    context_rows,
    graph_index,
)
from bench.accuracy.ours_finetune import FT_TRAIN
from bench.accuracy.run import evaluate
from bench.accuracy.subsample import subsample_eval
from bench.accuracy.tasks import SPLITS, TASKS, Protocol, build_splits, get_task
from dbt_rfm.aggregates import build_features, enumerate_paths


def probe(
    con: duckdb.DuckDBPyConnection,
    name: str,
    session: RfmSession,
    max_eval: int | None,
    hour: bool = False,
) -> dict[str, float]:
    """Test metric of LightGBM on each input (module docstring) for task ``name`` (binary or
    regression; inputs a task lacks, such as counts of a table without children, are left
    out); with ``hour``, ``{"embedding": test R^2}`` of the anchor time's hour of day instead
    (does the embedding know when the anchor is?)."""
    task = get_task(name)
    splits = build_splits(con, task, Protocol())
    if max_eval:
        splits = subsample_eval(splits, max_eval, Protocol().seed)
    # every input is fitted on the same training rows: the ones that are embedded
    splits = replace(
        splits, train=splits.train.take(pa.array(context_rows(splits.train, FT_TRAIN)))
    )
    ctx = ArmContext(con, flights_graph(), splits)
    index = graph_index(ctx)
    stacked, rows = stacked_splits(splits)

    def embed_rows(table: pa.Table) -> np.ndarray:
        cells = anchor_cells(index, table, task.entity_table).to_batches(max_chunksize=65_536)
        column = TARGET_COLUMNS.get(name)
        out: dict[tuple[str, int], np.ndarray] = {}
        for batch in embed(session, cells, name, target_column=column, batch_size=BATCH):
            vectors = batch.column("embedding").flatten().to_numpy().reshape(len(batch), -1)
            out.update(zip(anchor_keys(batch), vectors, strict=True))
        return np.array([out[k] for k in anchor_keys(table)], np.float32)

    inputs = {"embedding": np.vstack([embed_rows(splits.split(s)) for s in SPLITS])}
    if hour:
        y = np.concatenate([_hour_of_day(splits.split(s)) for s in SPLITS])
        return {"embedding": _fit(inputs["embedding"], y, rows, "l2", [], "r2")}
    own, _, own_cats, _ = entity_matrix(ctx)
    inputs["entity"] = own
    inputs["entity+embedding"] = np.hstack([own, inputs["embedding"]])
    paths = [p for p in enumerate_paths(ctx.graph, task.entity_table, 1) if not p.steps[0].forward]
    agg = build_features(con, ctx.graph, stacked, task.entity_table, paths)
    counts = [i for i, n in enumerate(agg.names) if ":count_" in n]
    if counts:
        inputs["counts"] = agg.values[:, counts]
        inputs["embedding+counts"] = np.hstack([inputs["embedding"], inputs["counts"]])
        inputs["entity+counts"] = np.hstack([own, inputs["counts"]])
    y = np.concatenate([np.asarray(labels(splits.split(s), task.kind), np.float64) for s in SPLITS])
    objective = "binary" if task.kind == "binary" else "l1"
    return {
        k: _fit(x, y, rows, objective, own_cats if k.startswith("entity") else [], task.kind)
        for k, x in inputs.items()
    }


def _fit(
    x: np.ndarray, y: np.ndarray, rows: dict[str, slice], objective: str, cats: list[int], kind: str
) -> float:
    params = {"objective": objective, "learning_rate": 0.05, "num_leaves": 15, "verbose": -1,
              "num_threads": 1, "seed": 0}  # fmt: skip
    tr, va, te = rows["train"], rows["val"], rows["test"]
    dtrain = lgb.Dataset(x[tr], y[tr], categorical_feature=cats)
    dval = lgb.Dataset(x[va], y[va], reference=dtrain, categorical_feature=cats)
    model = lgb.train(params, dtrain, 500, valid_sets=[dval],
                      callbacks=[lgb.early_stopping(30, verbose=False)])  # fmt: skip
    pred = model.predict(x[te])
    if kind == "r2":
        return float(1.0 - np.mean((pred - y[te]) ** 2) / np.var(y[te]))
    return evaluate(kind, y[te], pred)


def _hour_of_day(anchors: pa.Table) -> np.ndarray:
    us = anchors.column("anchor_time").cast(pa.int64()).to_numpy()
    return np.asarray(np.mod(us / 3.6e9, 24.0), np.float64)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; prints one line per task and input."""
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy.probe", description=__doc__)
    temporal = [n for n, t in TASKS.items() if t.kind != "ranking"]
    parser.add_argument("--tasks", default=",".join(temporal))
    parser.add_argument("--artifact", default=str(artifact_path()))
    parser.add_argument("--max-eval", type=int, help="val and test rows (default: all)")
    parser.add_argument(
        "--hour", action="store_true", help="probe the anchor's hour of day (test R^2) instead"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "probe.json")
    args = parser.parse_args(argv)
    con = duckdb.connect(str(ensure_database(DEFAULT_DB)), read_only=True)
    session = RfmSession.open(args.artifact)
    rows = []
    for name in args.tasks.split(","):
        metric = "hourR2" if args.hour else TASKS[name].metric
        for inputs, value in probe(con, name, session, args.max_eval, args.hour).items():
            print(f"{name:<20} {metric:<6} {inputs:<17} probe (test) {value:.4f}", flush=True)
            rows.append({"task": name, "inputs": inputs, "metric": metric, "test": round(value, 4)})
    doc = {"artifact": args.artifact, "max_eval": args.max_eval, "train": FT_TRAIN, "results": rows}
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
