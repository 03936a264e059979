"""Run tasks x arms, print a table and write ``bench/results/accuracy.json``.

Usage (repo root, the project's virtualenv)::

    python -m bench.accuracy [--tasks plane_delay_7d,...] [--arms constant,...]
                             [--db PATH] [--out PATH] [--quick] [--max-eval N] [--merge]

Arms: the baselines of :mod:`bench.accuracy.arms` plus the foundation model's
``ours_zero_shot`` (:mod:`bench.accuracy.ours`) and ``ours_finetuned``
(:mod:`bench.accuracy.ours_finetune`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from bench.accuracy.arms import ARMS as BASELINES
from bench.accuracy.arms import RANK_K, ArmContext, labels
from bench.accuracy.data import DEFAULT_DB, REPO, ensure_database
from bench.accuracy.graph import flights_graph, windows_for
from bench.accuracy.metrics import auroc, mae, map_at_k, paired_gap
from bench.accuracy.ours import ZeroShot
from bench.accuracy.ours_finetune import Finetuned
from bench.accuracy.ours_rolling import Rolling
from bench.accuracy.subsample import subsample_eval
from bench.accuracy.tasks import TASKS, Protocol, build_splits, get_task
from dbt_rfm.errors import RfmError, did_you_mean

DEFAULT_OUT = REPO / "bench" / "results" / "accuracy.json"
#: Every arm's test predictions of its last run, ``<task>.<arm>.json``: an arm run without
#: :data:`REFERENCE` gets its gap against the reference's stored predictions of the same test
#: labels (the fine-tuned arm takes an hour a task; the reference need not run again with it).
PREDICTIONS = REPO / "bench" / ".work" / "predictions"
#: The strong baseline every other arm is compared with, row by row (:func:`paired_gap`).
REFERENCE = "lgbm_aggregates"
ARMS: dict[str, Any] = {
    **BASELINES,
    **{a.name: a for a in (ZeroShot(), Rolling(), Finetuned())},
}


def evaluate(kind: str, y: Any, pred: Any) -> float:
    """The task metric of predictions ``pred`` against labels ``y``."""
    if kind == "binary":
        return auroc(y, pred)
    if kind == "regression":
        return mae(y, pred)
    return map_at_k(y, pred, RANK_K)


def run(
    db: Path,
    task_names: list[str],
    arm_names: list[str],
    protocol: Protocol,
    max_eval: int | None = None,
    max_context: int | None = None,
) -> dict[str, Any]:
    """Run every (task, arm) pair that the arm supports; return the results document
    (``max_context``: every task's context cap, instead of its own ``Task.max_context``)."""
    con = duckdb.connect(str(ensure_database(db)), read_only=True)
    graph = flights_graph()
    results: list[dict[str, Any]] = []
    tasks: dict[str, Any] = {}
    commit = _commit()
    for name in task_names:
        task = get_task(name)
        t0 = time.perf_counter()
        full = splits = build_splits(con, task, protocol)
        if max_eval:
            splits = subsample_eval(splits, max_eval, protocol.seed)
        sizes = splits.sizes()
        tasks[name] = {
            "description": task.description,
            "kind": task.kind,
            "metric": task.metric,
            "sizes": sizes,
            "labels_seconds": round(time.perf_counter() - t0, 3),
        }
        windows = windows_for(task.window)
        cap = max_context or task.max_context
        ctx = ArmContext(con, graph, splits, windows, full_splits=full, max_context=cap)
        y_val, y_test = labels(splits.val, task.kind), labels(splits.test, task.kind)
        predicted: dict[str, Any] = {}
        for arm_name in arm_names:
            arm = ARMS[arm_name]
            if not arm.supports(task.kind) or (
                getattr(arm, "temporal_only", False) and task.window is None
            ):
                continue
            out = arm.run(ctx)
            row = {
                "task": name,
                "arm": arm_name,
                "ran_at": _now(),
                "commit": commit,
                "metric": task.metric,
                "value": round(evaluate(task.kind, y_test, out.test), 4),
                "val_value": round(evaluate(task.kind, y_val, out.val), 4),
                "seconds": {k: round(v, 3) for k, v in out.seconds.items()},
                "sizes": sizes,
                "params": out.params,
            }
            results.append(row)
            predicted[arm_name] = out.test
            _store(name, arm_name, y_test, out.test)
            print(_line(row), flush=True)
        _add_gaps(results, name, task.kind, y_test, predicted)
    con.close()
    return {
        "max_eval": max_eval,
        "generated_at": _now(),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "protocol": {k: str(v) for k, v in asdict(protocol).items()},
        "tasks": tasks,
        "results": results,
    }


def _add_gaps(
    results: list[dict[str, Any]], task: str, kind: str, y: Any, predicted: dict[str, Any]
) -> None:
    """Give each other arm of ``task`` its test gap to :data:`REFERENCE` (``vs_lgbm_aggregates``:
    ``gap``, ``ci95``; a negative MAE gap is a win): against the reference's predictions of this
    run, else its stored ones of the same labels (then ``reference_stored_at`` says when)."""
    stored_at = None
    reference = predicted.get(REFERENCE)
    if reference is None:
        stored = stored_predictions(task, REFERENCE, y)
        if stored is None:
            return
        stored_at, reference = stored
    for row in results:
        if row["task"] == task and row["arm"] in predicted and row["arm"] != REFERENCE:
            gap, low, high = paired_gap(kind, y, predicted[row["arm"]], reference, RANK_K)
            vs = {"gap": round(gap, 4), "ci95": [round(low, 4), round(high, 4)]}
            row[f"vs_{REFERENCE}"] = vs | ({"reference_stored_at": stored_at} if stored_at else {})


def _now() -> str:
    """The time now, UTC, to the second (ISO 8601)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _commit() -> str | None:
    """The checkout's commit (12 hex digits, ``+`` when files differ from it), or None outside
    a git checkout."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+" if dirty else "")


def _plain(values: Any) -> Any:
    """Predictions or labels as JSON values (numpy arrays to lists)."""
    if hasattr(values, "tolist"):
        return values.tolist()
    return [_plain(v) for v in values] if isinstance(values, list | tuple) else values


def _digest(y: Any) -> str:
    return hashlib.sha256(json.dumps(_plain(y)).encode()).hexdigest()[:16]


def _store(task: str, arm: str, y: Any, test: Any) -> None:
    """Keep an arm's test predictions in :data:`PREDICTIONS`, stamped with its labels' digest."""
    PREDICTIONS.mkdir(parents=True, exist_ok=True)
    doc = {
        "labels": _digest(y),
        "at": _now(),
        "test": _plain(test),
    }
    (PREDICTIONS / f"{task}.{arm}.json").write_text(json.dumps(doc))


def stored_predictions(task: str, arm: str, y: Any) -> tuple[str, Any] | None:
    """(when, predictions) an earlier run stored for ``task`` and ``arm`` on labels ``y``."""
    path = PREDICTIONS / f"{task}.{arm}.json"
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    return (doc["at"], doc["test"]) if doc["labels"] == _digest(y) else None


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` plus the rows of ``old`` for (task, arm) pairs that ``new`` did not run."""
    if old.get("max_eval") != new.get("max_eval"):
        raise RfmError(
            f"--merge: {old.get('max_eval')=} but this run has {new.get('max_eval')=}; "
            "rows scored on different subsamples are not comparable"
        )
    ran = {(r["task"], r["arm"]) for r in new["results"]}
    kept = [r for r in old["results"] if (r["task"], r["arm"]) not in ran]
    return new | {
        "tasks": old.get("tasks", {}) | new["tasks"],
        "results": kept + new["results"],
        "total_seconds": round(old.get("total_seconds", 0.0) + new.get("total_seconds", 0.0), 1),
    }


def _line(row: dict[str, Any]) -> str:
    s = row["seconds"]
    return (
        f"{row['task']:<20} {row['arm']:<16} {row['metric']:<6} {row['value']:>8.4f} "
        f"(val {row['val_value']:.4f})  features {s['features']:7.2f}s  "
        f"train {s['train']:7.2f}s  score {s['score']:6.2f}s"
    )


def _names(text: str | None, known: dict[str, Any], what: str) -> list[str]:
    if not text:
        return list(known)
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n not in known:
            raise RfmError(f"unknown {what} '{n}'{did_you_mean(n, known)}; {what}s: {list(known)}")
    return names


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__)
    parser.add_argument("--tasks", help=f"comma-separated, default all: {','.join(TASKS)}")
    parser.add_argument("--arms", help=f"comma-separated, default all: {','.join(ARMS)}")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--quick", action="store_true", help="few anchors (smoke test; numbers not comparable)"
    )
    parser.add_argument(
        "--max-eval",
        type=int,
        help="score at most this many val and test rows per task (same subsample for all arms)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other (task, arm) rows already in --out (run with the same --max-eval)",
    )
    parser.add_argument(
        "--max-context",
        type=int,
        help="context anchors of the foundation-model arms, every task (default: each task's "
        "own, as the demo declares it: 20,000 for flight_delayed_15, else 2,000)",
    )
    args = parser.parse_args(argv)
    protocol = Protocol()
    if args.quick:
        protocol = replace(protocol, max_train_times=3, static_sizes=(3000, 1000, 1000))
    tasks = _names(args.tasks, TASKS, "task")
    arms = _names(args.arms, ARMS, "arm")
    t0 = time.perf_counter()
    print(f"{'task':<20} {'arm':<16} metric    value", flush=True)
    doc = run(args.db, tasks, arms, protocol, args.max_eval, args.max_context)
    doc["total_seconds"] = round(time.perf_counter() - t0, 1)
    if args.merge and args.out.exists():
        doc = merge(json.loads(args.out.read_text()), doc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(markdown(doc))
    print(f"total {doc['total_seconds']}s; wrote {args.out}")
    return 0


def markdown(doc: dict[str, Any]) -> str:
    """The results of ``doc`` (every task and arm in it) as a markdown table for the README."""
    order = {a: i for i, a in enumerate(ARMS)}
    tasks = list(doc.get("tasks", {}))
    rows = sorted(
        doc["results"],
        key=lambda r: (tasks.index(r["task"]) if r["task"] in tasks else 99, order[r["arm"]]),
    )
    lines = [
        "| task | metric | arm | test | val | test - lgbm_aggregates [95% CI] | features s "
        "| train s | score s | ran | notes |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        s, p = r["seconds"], r.get("params", {})
        notes = [f"context {p['context']}"] if "context" in p else []
        if "best_step" in p:
            notes.append(
                f"steps {p['steps']}, kept step {p['best_step']}, trained on {p.get('trained_on')}"
            )
            t = p.get("trees") or {}
            if "net" in t:
                verdict = "kept" if t["kept"] else "dropped"
                notes.append(f"tree head {verdict} (val {t['net']:.4f} -> {t['trees']:.4f})")
            elif t:
                notes.append("tree head skipped")
        elif "context_per_time" in p:
            notes.append(f"context {p['context_per_time']} per query time")
        vs = r.get(f"vs_{REFERENCE}")
        gap = f"{vs['gap']:+.3f} [{vs['ci95'][0]:+.3f}, {vs['ci95'][1]:+.3f}]" if vs else ""
        if vs and "reference_stored_at" in vs:
            notes.append(f"gap to {REFERENCE} of {vs['reference_stored_at'][:10]}")
        ran = f"{r.get('ran_at', '')[:10]} {r.get('commit') or ''}".strip()
        lines.append(
            f"| {r['task']} | {r['metric']} | {r['arm']} | {r['value']:.4f} | "
            f"{r['val_value']:.4f} | {gap} | {s['features']:.1f} | {s['train']:.1f} | "
            f"{s['score']:.1f} | {ran} | {'; '.join(notes)} |"
        )
    return "\n".join(lines)
