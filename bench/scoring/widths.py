"""How the net's width moves issue 4's two ratios (onnxruntime / torch eager, and the share
of matmul throughput onnxruntime reaches), for the same demo batch.

Usage (repo root): ``python -m bench.scoring.widths [--repeats N] [--workdir DIR]``. Each
width is an untrained net of the same depth (speed does not depend on the weights), timed by
:func:`bench.scoring.engines.compare` on the batch ``python -m bench.scoring`` uses (its
demo database in ``--workdir``, built with dbt when missing). Prints a table and writes
``bench/results/scoring_widths.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from bench.scoring import dbt_e2e, engines
from bench.scoring.common import choose_artifact
from bench.scoring.run import demo_tokens
from dbt_rfm.nn.config import NetConfig

RESULTS = Path(__file__).resolve().parents[1] / "results" / "scoring_widths.json"
#: (d_model, n_heads): the shipped shape first, then wider heads and wider nets.
SHAPES = ((64, 4), (128, 4), (128, 8), (256, 8))


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=9, help="timed rounds per shape")
    ap.add_argument("--workdir", default="/tmp/rfm-bench-scoring", help="scratch folder")
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    db = work / "demo.duckdb"
    if not db.exists():
        work.mkdir(parents=True, exist_ok=True)
        dbt_e2e.dbt_build(work / "dbt", db, choose_artifact(work)[0], None)
    tokens = demo_tokens(db)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rfm_widths_") as tmp:
        for d, heads in SHAPES:
            cfg = NetConfig(d_model=d, n_heads=heads)
            rows.append(engines.compare(tokens, Path(tmp), args.repeats, cfg))
    print(table(rows))
    RESULTS.write_text(json.dumps(rows, indent=2, default=float) + "\n")
    print(f"wrote {RESULTS}")


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: one line per net shape."""
    lines = [
        "| d, heads | MFLOPs/anchor | onnxruntime ms | torch ms | ort/torch 2 thr | "
        "ort/torch 1 thr | ort GFLOP/s | fraction of net-shape matmul |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        n = r["net"]
        lines.append(
            f"| {n['d_model']}, {n['n_heads']} | {r['flops_per_anchor']['encoder'] / 1e6:.1f} | "
            f"{r['ort_s'] * 1e3:.1f} | {r['torch_s'] * 1e3:.1f} | "
            f"{r['ort_over_torch_speedup']:.2f}x | "
            f"{r['single_thread']['ort_over_torch_speedup']:.2f}x | "
            f"{r['ort_achieved_gflops']:.1f} | {r['fraction_of_net_shape_matmul']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
