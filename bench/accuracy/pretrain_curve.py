"""Held-out zero-shot metrics against pretraining steps, from a pretraining run's ``log.jsonl``.

Usage (repo root)::

    python -m bench.accuracy.pretrain_curve /tmp/pt/run1 [--out bench/results/pretrain_curve.json]

Every line of ``log.jsonl`` that carries ``metrics`` (the run's periodic held-out evaluation:
``{"<set>_heldout": {"auroc": .., "n_auroc": .., ...}}``) becomes one point. Prints a
markdown table (one row per step) for ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.accuracy.data import REPO
from dbt_rfm.errors import RfmError

DEFAULT_OUT = REPO / "bench" / "results" / "pretrain_curve.json"
#: Metrics shown in the table, per held-out set, in this order (when present).
SHOWN = ("auroc", "nmae", "r2", "map", "map_popular", "acc", "acc_majority")


def read_curve(run_dir: Path) -> list[dict[str, Any]]:
    """Points ``{"step", "loss", "elapsed_s", "metrics"}`` of ``run_dir/log.jsonl``, by step.

    Raises:
        RfmError: when the log is missing, a line is not JSON, or no line has metrics.
    """
    path = run_dir / "log.jsonl"
    if not path.is_file():
        raise RfmError(f"pretrain curve: no log at {path}")
    points: dict[int, dict[str, Any]] = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RfmError(f"pretrain curve: {path}:{i} is not JSON ({exc})") from exc
        if row.get("metrics"):
            points[int(row["step"])] = {
                "step": int(row["step"]),
                "loss": row.get("loss"),
                "elapsed_s": row.get("elapsed_s"),
                "metrics": row["metrics"],
            }
    if not points:
        raise RfmError(f"pretrain curve: {path} has no line with held-out metrics")
    return [points[s] for s in sorted(points)]


def table(points: list[dict[str, Any]]) -> str:
    """A markdown table: step, training loss, then ``set metric (n)`` columns."""
    cols: list[tuple[str, str]] = []
    for p in points:
        for name, ms in p["metrics"].items():
            for m in SHOWN:
                if m in ms and (name, m) not in cols:
                    cols.append((name, m))
    head = ["step", "loss"] + [f"{n.removesuffix('_heldout')} {m}" for n, m in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for p in points:
        cells = [str(p["step"]), "-" if p["loss"] is None else f"{p['loss']:.3f}"]
        for name, m in cols:
            v = p["metrics"].get(name, {}).get(m)
            cells.append("-" if v is None else f"{v:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    counts = {
        f"{n.removesuffix('_heldout')} {m}": points[-1]["metrics"].get(n, {}).get(f"n_{m}")
        for n, m in cols
    }
    note = ", ".join(f"{k}: {v}" for k, v in counts.items() if v is not None)
    return "\n".join(lines) + f"\n\nHeld-out targets per metric (last step): {note}."


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy.pretrain_curve")
    parser.add_argument("run_dirs", nargs="+", type=Path, help="pretraining output folders")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    runs = {str(d): read_curve(d) for d in args.run_dirs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    for name, points in runs.items():
        print(f"### {name}\n\n{table(points)}\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
