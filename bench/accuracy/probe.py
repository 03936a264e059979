"""Where the foundation model loses: LightGBM on its frozen zero-shot embeddings.

Usage (repo root)::

    python -m bench.accuracy.probe [--tasks plane_delay_7d,...] [--artifact PREFIX] [--hour]

For each task, the encoder embeds the most recent ``FT_TRAIN`` training anchors and the
val/test subsample (``--max-eval`` rows, 1,000 by default, as in the README table); LightGBM
(the same light setting as the baselines' smaller grid point) learns the label from the
embeddings, early-stopped on val, and the test metric is printed. If the probe is far better
than ``ours_zero_shot``, the ICL head wastes what the encoder knows; if it is as bad, the
encoder never saw the signal. A diagnostic, not an arm: it trains on labels. ``--hour`` asks
instead whether the embedding knows the anchor's hour of day (test R^2 of LightGBM; the hour
alone gives flight_delayed_15 an AUROC of about 0.64).
"""

from __future__ import annotations

import argparse

import duckdb
import lightgbm as lgb
import numpy as np
import pyarrow as pa
from rfm_runtime.score import embed
from rfm_runtime.session import RfmSession
from rfm_runtime.tokenize import anchor_keys

from bench.accuracy.arms import ArmContext, labels
from bench.accuracy.data import DEFAULT_DB, ensure_database
from bench.accuracy.graph import flights_graph
from bench.accuracy.ours import (
    BATCH,
    TARGET_COLUMNS,
    anchor_cells,
    artifact_path,
    context_rows,
    prepare,
)
from bench.accuracy.ours_finetune import FT_TRAIN
from bench.accuracy.run import evaluate
from bench.accuracy.subsample import subsample_eval
from bench.accuracy.tasks import TASKS, Protocol, build_splits, get_task


def probe(
    con: duckdb.DuckDBPyConnection,
    name: str,
    session: RfmSession,
    max_eval: int,
    hour: bool = False,
) -> float:
    """Test metric of LightGBM on the embeddings of task ``name`` (binary or regression); with
    ``hour``, the test R^2 of the anchor time's hour of day instead (does the embedding know
    when the anchor is?)."""
    task = get_task(name)
    splits = subsample_eval(build_splits(con, task, Protocol()), max_eval, Protocol().seed)
    ctx = ArmContext(con, flights_graph(), splits)
    index = prepare(ctx).index
    train = splits.train.take(pa.array(context_rows(splits.train, FT_TRAIN)))

    def embed_rows(table: pa.Table) -> np.ndarray:
        cells = anchor_cells(index, table, task.entity_table).to_batches(max_chunksize=65_536)
        column = TARGET_COLUMNS.get(name)
        out: dict[tuple[str, int], np.ndarray] = {}
        for batch in embed(session, cells, name, target_column=column, batch_size=BATCH):
            vectors = batch.column("embedding").flatten().to_numpy().reshape(len(batch), -1)
            out.update(zip(anchor_keys(batch), vectors, strict=True))
        return np.array([out[k] for k in anchor_keys(table)], np.float32)

    parts = {"train": train, "val": splits.val, "test": splits.test}
    x = {s: embed_rows(t) for s, t in parts.items()}
    if hour:
        y = {s: _hour_of_day(t) for s, t in parts.items()}
        objective = "l2"
    else:
        y = {s: np.asarray(labels(t, task.kind), np.float64) for s, t in parts.items()}
        objective = "binary" if task.kind == "binary" else "l1"
    params = {"objective": objective, "learning_rate": 0.05, "num_leaves": 15, "verbose": -1,
              "num_threads": 1, "seed": 0}  # fmt: skip
    dtrain = lgb.Dataset(x["train"], y["train"])
    dval = lgb.Dataset(x["val"], y["val"], reference=dtrain)
    model = lgb.train(params, dtrain, 500, valid_sets=[dval],
                      callbacks=[lgb.early_stopping(30, verbose=False)])  # fmt: skip
    pred = model.predict(x["test"])
    if hour:
        return float(1.0 - np.mean((pred - y["test"]) ** 2) / np.var(y["test"]))
    return evaluate(task.kind, y["test"], pred)


def _hour_of_day(anchors: pa.Table) -> np.ndarray:
    us = anchors.column("anchor_time").cast(pa.int64()).to_numpy()
    return np.asarray(np.mod(us / 3.6e9, 24.0), np.float64)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; prints one line per task."""
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy.probe", description=__doc__)
    temporal = [n for n, t in TASKS.items() if t.kind != "ranking"]
    parser.add_argument("--tasks", default=",".join(temporal))
    parser.add_argument("--artifact", default=str(artifact_path()))
    parser.add_argument("--max-eval", type=int, default=1000)
    parser.add_argument(
        "--hour", action="store_true", help="probe the anchor's hour of day (test R^2) instead"
    )
    args = parser.parse_args(argv)
    con = duckdb.connect(str(ensure_database(DEFAULT_DB)), read_only=True)
    session = RfmSession.open(args.artifact)
    for name in args.tasks.split(","):
        value = probe(con, name, session, args.max_eval, args.hour)
        metric = "hourR2" if args.hour else TASKS[name].metric
        print(f"{name:<20} {metric:<6} embedding probe (test) {value:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
