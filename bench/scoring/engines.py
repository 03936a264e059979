"""onnxruntime against torch eager on the same net and TokenBatch; FLOPs; matmul throughput.

The net is ``build_net()`` (defaults, seed 0) exported with ``export_artifact``: speed does
not depend on the weights. Both engines run the encoder on the same ``TokenBatch`` of B = 64
demo anchors at the full S = 128 (untrimmed), on ``THREADS`` intra-op threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from rfm_runtime.session import RfmSession
from rfm_runtime.tokenize import TokenBatch
from torch.utils.flop_counter import FlopCounterMode

from bench.scoring.common import THREADS, median_time, untrained_artifact
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
    embed = 2 * s * (2 * d * d + (4 + 4 * cfg.n_freqs) * d)
    proj = cfg.n_blocks * 2 * s * (3 * d * d + d * d)
    attention = cfg.n_blocks * 2 * 2 * s * s * d  # QK^T and (softmax)V, all heads together
    ffn = cfg.n_blocks * 2 * s * 2 * d * f
    readout = 2 * d * d
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


def matmul_throughput(repeats: int) -> dict[str, float]:
    """GFLOP/s of float32 torch matmuls on ``THREADS`` threads: net-like shapes and a square.

    Net-like: the encoder's matmuls for B = 64, S = 128, d = 64 (qkv, FFN in, FFN out,
    per-head QK^T and AV); their total FLOPs over total median time.
    """
    torch.set_num_threads(THREADS)
    g = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    x, w = rand(8192, 64), {n: rand(64, n) for n in (192, 128, 64)}
    h, w2 = rand(8192, 128), rand(128, 64)
    q, k = rand(256, 128, 16), rand(256, 16, 128)
    p, v = rand(256, 128, 128), rand(256, 128, 16)
    ops = [
        (lambda: x @ w[192], 2 * 8192 * 64 * 192),
        (lambda: x @ w[128], 2 * 8192 * 64 * 128),
        (lambda: h @ w2, 2 * 8192 * 128 * 64),
        (lambda: x @ w[64], 2 * 8192 * 64 * 64),
        (lambda: torch.bmm(q, k), 2 * 256 * 128 * 16 * 128),
        (lambda: torch.bmm(p, v), 2 * 256 * 128 * 128 * 16),
    ]
    with torch.inference_mode():
        times = [median_time(fn, repeats) for fn, _ in ops]
        a, b = rand(1024, 1024), rand(1024, 1024)
        square = median_time(lambda: a @ b, repeats)
    return {
        "net_shapes_gflops": sum(f for _, f in ops) / sum(times) / 1e9,
        "square_1024_gflops": 2 * 1024**3 / square / 1e9,
    }


def compare(tokens: TokenBatch, workdir: Path, repeats: int) -> dict[str, Any]:
    """Median encoder seconds of onnxruntime and torch eager on ``tokens``, and FLOP figures.

    Args:
        tokens: B anchors at S = 128 (not trimmed).
        workdir: where the untrained artifact is exported.
        repeats: timed repeats (after one warm-up) per engine.
    """
    torch.set_num_threads(THREADS)
    encoder, _ = build_net()
    encoder.eval()
    prefix = untrained_artifact(workdir / "engines" / "rfm-small")
    rfm = RfmSession.open(prefix, providers=["CPUExecutionProvider"], threads=THREADS)
    feeds = tokens.feeds()
    args = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in feeds.values())

    def run_torch() -> np.ndarray:
        with torch.inference_mode():
            return encoder(*args).numpy()

    def run_ort() -> np.ndarray:
        return np.asarray(rfm.encoder.run(["embedding"], feeds)[0])

    max_diff = float(np.abs(run_torch() - run_ort()).max())
    t_ort = median_time(run_ort, repeats)
    t_torch = median_time(run_torch, repeats)
    b, s = tokens.node_index.shape
    cfg = encoder.cfg
    flops = analytic_flops(cfg, s, context=2000, queries=b)
    counted = counted_flops(encoder, tokens)
    mm = matmul_throughput(max(3, repeats // 2))
    achieved = flops["encoder"] * b / t_ort / 1e9
    return {
        "batch": b,
        "seq_len": s,
        "ort_s": t_ort,
        "torch_s": t_torch,
        "ort_over_torch_speedup": t_torch / t_ort,
        "ort_anchors_per_s": b / t_ort,
        "torch_anchors_per_s": b / t_torch,
        "max_abs_diff": max_diff,
        "flops_per_anchor": {k: int(v) for k, v in flops.items()},
        "flops_per_anchor_counted_torch": int(counted),
        "matmul": mm,
        "ort_achieved_gflops": achieved,
        "fraction_of_net_shape_matmul": achieved / mm["net_shapes_gflops"],
        "fraction_of_square_matmul": achieved / mm["square_1024_gflops"],
    }
