"""How much two arms of a binary task know that the other does not: the test AUROC of each,
the rank correlation of their predictions, and the AUROC of their equal-weight rank average
against the reference arm (paired bootstrap, as the table's gaps).

Usage (repo root, after both arms ran with the current labels)::

    python -m bench.accuracy.blend [--tasks plane_delay_7d,flight_delayed_15]
                                   [--arms ours_finetuned,lgbm_aggregates] [--paths]

It reads the test predictions each run stores (``bench/.work/predictions``), so it trains
nothing. If the average of ``ours_finetuned`` and ``lgbm_aggregates`` beats the baseline by
little, the two share most of what they know: an arm that learnt everything either knows
would not do much better. A diagnostic, not an arm: the average is not something a user could
serve without building the baseline too. The weight is fixed at one half, never chosen on the
test split.

``--paths`` asks where the average's gain comes from: for each link path of the baseline,
LightGBM (the baseline's grid) on the entity's own columns plus that path's aggregates, its
test and validation AUROC, and the AUROC of its rank average with the first arm. A path whose
average beats the first arm alone holds something the first arm lacks. This one trains (minutes
per task).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from bench.accuracy.arms import (
    RANK_K,
    ArmContext,
    entity_matrix,
    fit_and_score,
    labels,
    stacked_splits,
)
from bench.accuracy.data import DEFAULT_DB, REPO
from bench.accuracy.graph import flights_graph, windows_for
from bench.accuracy.metrics import auroc, paired_gap
from bench.accuracy.run import REFERENCE, stored_predictions
from bench.accuracy.tasks import Protocol, build_splits, get_task
from dbt_rfm.aggregates import build_features, enumerate_paths


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks of ``x`` scaled to [0, 1] (AUROC reads the order only)."""
    return np.argsort(np.argsort(x, kind="stable"), kind="stable") / max(len(x) - 1, 1)


def blend(
    task_name: str, arms: tuple[str, str], paths: bool = False, db: Path = DEFAULT_DB
) -> dict[str, Any]:
    """The row of one task: each arm's AUROC, their rank correlation, the average's AUROC and
    its gap against :data:`REFERENCE` (with its 95% interval); with ``paths``, the per-path
    rows (module docstring)."""
    task = get_task(task_name)
    if task.kind != "binary":
        raise SystemExit(f"blend: task '{task_name}' is {task.kind}; binary tasks only")
    con = duckdb.connect(str(db), read_only=True)
    splits = build_splits(con, task, Protocol())
    y = np.asarray(labels(splits.test, task.kind), np.float64)
    preds = {}
    for arm in {*arms, REFERENCE}:
        stored = stored_predictions(task_name, arm, y)
        if stored is None:
            raise SystemExit(
                f"blend: no stored test predictions of '{arm}' on '{task_name}' for the current "
                f"labels; run `python -m bench.accuracy --tasks {task_name} --arms {arm}`"
            )
        preds[arm] = np.asarray(stored[1], np.float64)
    a, b = (_ranks(preds[arm]) for arm in arms)
    mean = (a + b) / 2
    gap, low, high = paired_gap("binary", list(y), mean, preds[REFERENCE], RANK_K)
    by_path = _by_path(con, splits, y, a) if paths else None
    con.close()
    return {
        "task": task_name,
        "arms": list(arms),
        "auroc": {arm: round(auroc(y, preds[arm]), 4) for arm in arms},
        "rank_correlation": round(float(np.corrcoef(a, b)[0, 1]), 4),
        "average": round(auroc(y, mean), 4),
        f"average_vs_{REFERENCE}": {"gap": round(gap, 4), "ci95": [round(low, 4), round(high, 4)]},
    } | ({"paths": by_path} if by_path else {})


def _by_path(con: Any, splits: Any, y: np.ndarray, first: np.ndarray) -> list[dict[str, Any]]:
    """Per link path: LightGBM on the own columns plus its aggregates, and its rank average
    with ``first`` (the first arm's ranks of the test labels ``y``)."""
    graph, task = flights_graph(), splits.task
    windows = windows_for(task.window)
    ctx = ArmContext(con, graph, splits, windows)
    x_own, names, cats, _ = entity_matrix(ctx)
    stacked, _ = stacked_splits(splits)
    y_val = np.asarray(labels(splits.val, "binary"), np.float64)
    out = []
    for path in [None, *enumerate_paths(graph, task.entity_table)]:
        x, cols = x_own, names
        if path is not None:
            agg = build_features(con, graph, stacked, task.entity_table, [path], windows)
            x, cols = np.hstack([x_own, agg.values]), names + list(agg.names)
        fit = fit_and_score(ctx, x, cats, 0.0, cols)
        row = {
            "path": "own columns" if path is None else path.name,
            "test": round(auroc(y, fit.test), 4),
            "val": round(auroc(y_val, fit.val), 4),
            "average": round(auroc(y, (first + _ranks(fit.test)) / 2), 4),
        }
        print(f"  {row}", flush=True)
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the table and write ``bench/results/blend.json``."""
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy.blend", description=__doc__)
    parser.add_argument("--tasks", default="plane_delay_7d,flight_delayed_15")
    parser.add_argument("--arms", default=f"ours_finetuned,{REFERENCE}")
    parser.add_argument("--paths", action="store_true", help="also the per-path rows (trains)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "blend.json")
    args = parser.parse_args(argv)
    first, second = args.arms.split(",")
    rows = [blend(t, (first, second), args.paths) for t in args.tasks.split(",")]
    print(f"| task | {first} | {second} | rank correlation | average | vs {REFERENCE} |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        vs = r[f"average_vs_{REFERENCE}"]
        print(f"| {r['task']} | {r['auroc'][first]} | {r['auroc'][second]} | "
              f"{r['rank_correlation']} | {r['average']} | "
              f"{vs['gap']:+.4f} [{vs['ci95'][0]:+.4f}, {vs['ci95'][1]:+.4f}] |")  # fmt: skip
    args.out.write_text(json.dumps({"results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
