"""The scoring benchmark's own arithmetic: FLOP formula and the synthetic cell stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from rfm_runtime.schema import CELLS
from rfm_runtime.tokenize import empty_batch

from bench.scoring.engines import analytic_flops, counted_flops, matmul_suite
from bench.scoring.memory import synthetic_cells
from dbt_rfm.nn.config import NetConfig
from dbt_rfm.nn.train import build_net


@pytest.mark.parametrize(("d", "blocks", "seq"), [(32, 1, 16), (64, 2, 40)])
def test_analytic_encoder_flops_match_torch_counter(d: int, blocks: int, seq: int) -> None:
    cfg = NetConfig(d_model=d, n_blocks=blocks, seq_len=seq)
    encoder, _ = build_net(cfg)
    tokens = empty_batch(3, cfg.tokenizer())
    tokens.node_index[:, :] = 0  # every position a token of the entity row: nothing trimmed
    tokens.stype[:, :] = 1
    assert analytic_flops(cfg, seq, context=10, queries=3)["encoder"] == counted_flops(
        encoder, tokens
    )


@pytest.mark.parametrize(("d", "heads"), [(64, 4), (128, 8)])
def test_matmul_reference_runs_one_block_of_the_nets_shapes(d: int, heads: int) -> None:
    cfg = NetConfig(d_model=d, n_heads=heads, n_blocks=3)
    _, flops, _, _ = matmul_suite(cfg, batch=4, seq_len=32)
    per_anchor = analytic_flops(cfg, 32, context=10, queries=3)
    block = sum(per_anchor[k] for k in ("projections", "attention", "ffn")) / cfg.n_blocks
    assert flops == 4 * block


def _templates() -> pa.Table:
    rows = {"a": 3, "b": 1, "c": 2}  # anchor -> cells
    n = sum(rows.values())
    data = {f.name: pa.nulls(n, f.type) for f in CELLS}
    data["entity_id"] = pa.array([k for k, m in rows.items() for _ in range(m)])
    data["anchor_time"] = pa.array(np.zeros(n, "int64")).cast(pa.timestamp("us"))
    for name in ("table_name", "row_key", "column_name", "stype"):
        data[name] = pa.array(["x"] * n)
    data["hop"] = pa.array(np.zeros(n, "int32"))
    return pa.table(data, schema=CELLS)


def test_synthetic_cells_stream_n_anchors_repeating_templates() -> None:
    batches = list(synthetic_cells(_templates(), 7, per_batch=2))
    ids = pa.concat_tables([pa.Table.from_batches([b]) for b in batches])["entity_id"]
    ids_list = ids.to_pylist()
    runs = [ids_list[0]] + [b for a, b in zip(ids_list, ids_list[1:], strict=False) if a != b]
    assert runs == [f"s{i:07d}" for i in range(7)]  # 7 contiguous anchors, in order
    sizes = [ids_list.count(r) for r in runs]
    assert sizes == [3, 1, 2, 3, 1, 2, 3]  # template sizes repeat
    per_batch = [len(set(b.column("entity_id").to_pylist())) for b in batches]
    assert max(per_batch) == 2  # never more than per_batch anchors at once


def test_readme_rewrite_keeps_the_notes_after_the_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from bench.scoring import run

    readme = tmp_path / "README.md"
    readme.write_text(
        f"# Benchmarks\n\n## Scoring\n\nold table\n\n{run.END_GENERATED}\nhand notes\n\n"
        "## Accuracy\n\nkept\n"
    )
    monkeypatch.setattr(run, "README", readme)
    run.write_readme(json.loads((run.ROOT / "bench" / "results" / "scoring.json").read_text()))
    text = readme.read_text()
    assert "old table" not in text and "| measure | value | goal |" in text
    assert text.count(run.END_GENERATED) == 1
    assert text.index(run.END_GENERATED) < text.index("hand notes") < text.index("## Accuracy")
    assert text.endswith("## Accuracy\n\nkept\n")
