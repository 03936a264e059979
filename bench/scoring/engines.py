"""onnxruntime against torch eager on the same net and TokenBatch; FLOPs; matmul throughput.

The net is ``build_net()`` (defaults, seed 0) exported with ``export_artifact``: speed does
not depend on the weights. Both engines run the encoder on the same ``TokenBatch`` of B = 64
demo anchors at the full S = 128 (untrimmed), on ``THREADS`` intra-op threads.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rfm_runtime.session import RfmSession
from rfm_runtime.tokenize import ROW_COUNT_WIDTH, TokenBatch
from rfm_runtime.value_features import AUX_WIDTH, CALENDAR_WIDTH
from torch.utils.flop_counter import FlopCounterMode

from bench.scoring.common import THREADS, untrained_artifact
from dbt_rfm.nn.config import NetConfig
from dbt_rfm.nn.train import build_net


def analytic_flops(cfg: NetConfig, seq_len: int, context: int, queries: int) -> dict[str, float]:
    """Multiply-add FLOPs (2 per MAC) per anchor of the encoder and of the ICL head.

    Args:
        cfg: the net's sizes.
        seq_len: tokens per anchor S.
        context: labelled context anchors N seen by the head.
        queries: query anchors per head call Q (the context projection is shared by them).

    Returns:
        ``{"embed", "projections", "attention", "ffn", "readout", "encoder", "head"}``.
    """
    d, s, f = cfg.d_model, seq_len, cfg.ffn_mult * cfg.d_model
    # + value_aux and row_counts projections
    embed = 2 * s * (2 * d * d + (4 + 4 * cfg.n_freqs) * d + (AUX_WIDTH + ROW_COUNT_WIDTH) * d)
    proj = cfg.n_blocks * 2 * s * (3 * d * d + d * d)
    attention = cfg.n_blocks * 2 * 2 * s * s * d  # QK^T and (softmax)V, all heads together
    ffn = cfg.n_blocks * 2 * s * 2 * d * f
    readout = 2 * d * d + 2 * CALENDAR_WIDTH * d  # pooled tokens, and the anchor time
    n, k = float(context), cfg.max_classes
    per_layer = 4.0 * d * d + 8 * d * d + 4 * n * d  # q, out, FFN; QK^T and AV over N
    per_layer += 2 * n * d * 2 * d / queries  # context k, v projections, shared by Q queries
    head = cfg.head_layers * per_layer + 6 * d * d + 2 * n * (d + k) + 2 * d * k  # vote, logits
    head += 2 * n * d * (2 * d + k) / queries  # ctx_in, vote_k, class codes, shared
    encoder = embed + proj + attention + ffn + readout
    return {
        "embed": embed,
        "projections": proj,
        "attention": attention,
        "ffn": ffn,
        "readout": readout,
        "encoder": encoder,
        "head": head,
    }


def counted_flops(encoder: torch.nn.Module, tokens: TokenBatch) -> float:
    """FLOPs per anchor counted by ``torch.utils.flop_counter`` (matmuls only)."""
    args = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in tokens.feeds().values())
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        encoder(*args)
    return counter.get_total_flops() / tokens.num_anchors


def matmul_suite(
    cfg: NetConfig, batch: int = 64, seq_len: int = 128
) -> tuple[Callable[[], object], float, Callable[[], object], float]:
    """Float32 torch matmuls: the encoder's shapes, and a 1024^3 square, with their FLOPs.

    Net shapes: the encoder's matmuls for ``batch`` anchors of ``seq_len`` tokens and ``cfg``'s
    widths (qkv, out, FFN in, FFN out, per-head QK^T and AV), run once each.

    Returns:
        ``(run_net_shapes, net_flops, run_square, square_flops)``.
    """
    g = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    d, f, s = cfg.d_model, cfg.ffn_mult * cfg.d_model, seq_len
    rows, heads, width = batch * s, batch * cfg.n_heads, cfg.d_model // cfg.n_heads
    x, h, w2 = rand(rows, d), rand(rows, f), rand(f, d)
    w = {n: rand(d, n) for n in (3 * d, d, f)}
    q, k = rand(heads, s, width), rand(heads, width, s)
    p, v = rand(heads, s, s), rand(heads, s, width)
    a, b = rand(1024, 1024), rand(1024, 1024)

    def net_shapes() -> object:
        with torch.inference_mode():
            return [x @ w[3 * d], x @ w[d], x @ w[f], h @ w2, torch.bmm(q, k), torch.bmm(p, v)]

    def square() -> object:
        with torch.inference_mode():
            return a @ b

    flops = 2 * rows * d * (3 * d + d + f + f) + 2 * 2 * heads * s * s * width
    return net_shapes, float(flops), square, 2.0 * 1024**3


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Wall seconds of each function, run in turn ``repeats`` times after one warm-up round.

    Interleaving puts every engine under the same background load (the cores are shared);
    ratios are taken round by round.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def _single_thread(
    encoder: torch.nn.Module,
    prefix: Path,
    feeds: dict[str, np.ndarray],
    args: tuple[torch.Tensor, ...],
    repeats: int,
) -> dict[str, float]:
    """The same comparison on 1 thread each (less sensitive to other processes' load)."""
    rfm = RfmSession.open(prefix, providers=["CPUExecutionProvider"], threads=1)
    torch.set_num_threads(1)
    try:

        def run_torch() -> object:
            with torch.inference_mode():
                return encoder(*args)

        times = interleaved(
            {"ort": lambda: rfm.encoder.run(["embedding"], feeds), "torch": run_torch}, repeats
        )
    finally:
        torch.set_num_threads(THREADS)
    return {
        "ort_s": statistics.median(times["ort"]),
        "torch_s": statistics.median(times["torch"]),
        "ort_over_torch_speedup": statistics.median(
            t / o for t, o in zip(times["torch"], times["ort"], strict=True)
        ),
    }


def compare(
    tokens: TokenBatch, workdir: Path, repeats: int, cfg: NetConfig | None = None
) -> dict[str, Any]:
    """Median encoder seconds of onnxruntime and torch eager on ``tokens``, and FLOP figures.

    Args:
        tokens: B anchors at S = 128 (not trimmed).
        workdir: where the untrained artifact is exported.
        repeats: timed rounds (after one warm-up round); each round runs onnxruntime, torch
            and the matmul references once.
        cfg: the net's shape (default: the shipped ``NetConfig``).
    """
    cfg = cfg or NetConfig()
    torch.set_num_threads(THREADS)
    encoder, _ = build_net(cfg)
    encoder.eval()
    prefix = untrained_artifact(workdir / "engines" / f"d{cfg.d_model}h{cfg.n_heads}", cfg)
    rfm = RfmSession.open(prefix, providers=["CPUExecutionProvider"], threads=THREADS)
    feeds = tokens.feeds()
    args = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in feeds.values())

    def run_torch() -> np.ndarray:
        with torch.inference_mode():
            return encoder(*args).numpy()

    def run_ort() -> np.ndarray:
        return np.asarray(rfm.encoder.run(["embedding"], feeds)[0])

    max_diff = float(np.abs(run_torch() - run_ort()).max())
    b, s = tokens.node_index.shape
    net_shapes, net_flops, square, square_flops = matmul_suite(cfg, b, s)
    fns = {"ort": run_ort, "torch": run_torch, "net": net_shapes, "square": square}
    times = interleaved(fns, repeats)
    t_ort, t_torch = statistics.median(times["ort"]), statistics.median(times["torch"])
    ratio = statistics.median(a / b for a, b in zip(times["torch"], times["ort"], strict=True))
    net_gflops = net_flops / statistics.median(times["net"]) / 1e9
    square_gflops = square_flops / statistics.median(times["square"]) / 1e9
    single = _single_thread(encoder, prefix, feeds, args, repeats)
    flops = analytic_flops(cfg, s, context=2000, queries=b)
    counted = counted_flops(encoder, tokens)
    achieved = flops["encoder"] * b / t_ort / 1e9
    fraction = statistics.median(
        flops["encoder"] * b / o / (net_flops / m)
        for o, m in zip(times["ort"], times["net"], strict=True)
    )
    return {
        "net": {"d_model": cfg.d_model, "n_heads": cfg.n_heads, "n_blocks": cfg.n_blocks},
        "batch": b,
        "seq_len": s,
        "ort_s": t_ort,
        "torch_s": t_torch,
        "ort_over_torch_speedup": ratio,
        "ort_anchors_per_s": b / t_ort,
        "torch_anchors_per_s": b / t_torch,
        "max_abs_diff": max_diff,
        "single_thread": single,
        "flops_per_anchor": {k: int(v) for k, v in flops.items()},
        "flops_per_anchor_counted_torch": int(counted),
        "matmul": {"net_shapes_gflops": net_gflops, "square_1024_gflops": square_gflops},
        "ort_achieved_gflops": achieved,
        "fraction_of_net_shape_matmul": fraction,
        "fraction_of_square_matmul": achieved / square_gflops,
    }
