"""Masked attention: head groups meet their mask kind; the ONNX graph's softmax floor is exact."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from rfm_runtime.tokenize import tokenize  # noqa: E402
from rfm_synthetic import make_cells, small_net_config  # noqa: E402

from dbt_rfm.nn.encoder import NEG, attention_bias, build_masks  # noqa: E402
from dbt_rfm.nn.export import export_encoder  # noqa: E402
from dbt_rfm.nn.train import build_net  # noqa: E402

CFG = small_net_config()
CFG8 = type(CFG)(**{**CFG.to_dict(), "n_heads": 8})


def _tokens(anchors: int = 6, seed: int = 4):
    cells, _ = make_cells(anchors, seed=seed, max_orders=10)
    return tokenize(cells, None, CFG.tokenizer()).trimmed()


def _reference_block(block, x, masks):
    """The block as first written: the boolean masks repeated per head, scores divided."""
    b, s, d = x.shape
    h = block.heads
    bias = (1.0 - masks.repeat(1, h // 4, 1, 1).to(torch.float32)) * NEG
    q, k, v = block.qkv(block.norm1(x)).reshape(b, s, 3, h, d // h).permute(2, 0, 3, 1, 4)
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // h) + bias, dim=-1) @ v
    x = x + block.out(att.transpose(1, 2).reshape(b, s, d))
    return x + block.ffn(block.norm2(x))


def test_head_groups_meet_mask_kind_h_mod_4() -> None:
    encoder, _ = build_net(CFG8, seed=2)
    encoder.eval()
    tb = _tokens()
    ids = [torch.from_numpy(a) for a in (tb.node_index, tb.parent_index, tb.column_index)]
    masks = build_masks(*ids)
    bias = attention_bias(*ids)
    assert bias.shape == (tb.num_anchors, 1, 4, *masks.shape[-2:])
    np.testing.assert_array_equal((bias[:, 0] == 0).numpy(), masks.numpy())
    x = torch.randn(tb.num_anchors, masks.shape[-1], CFG8.d_model, generator=torch.Generator())
    with torch.no_grad():
        got = encoder.blocks[0](x, bias)
        want = _reference_block(encoder.blocks[0], x, masks)
    valid = torch.from_numpy(tb.node_index >= 0)
    np.testing.assert_allclose(got[valid].numpy(), want[valid].numpy(), atol=1e-5)


@pytest.mark.parametrize("gain", [1.0, 25.0])
def test_onnx_matches_torch_when_masked_scores_dwarf_the_rest(tmp_path, gain: float) -> None:
    """Large q/k weights push masked scores far above the allowed ones: the floor still hides
    them, as the -1e9 bias does in torch."""
    encoder, _ = build_net(CFG8, seed=3)
    encoder.eval()
    with torch.no_grad():
        for block in encoder.blocks:
            block.qkv.weight[: 2 * CFG8.d_model] *= gain
    path = export_encoder(encoder, tmp_path / "enc.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    tb = _tokens(anchors=9, seed=5)
    with torch.no_grad():
        want = encoder(*(torch.from_numpy(a) for a in tb.feeds().values())).numpy()
    got = sess.run(["embedding"], tb.feeds())[0]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_every_softmax_reads_floored_scores(tmp_path) -> None:
    """Speed guard: the exported softmax inputs pass through the floor (a Max node), which
    keeps onnxruntime's CPU softmax off subnormal floats."""
    encoder, _ = build_net(CFG, seed=1)
    model = onnx.load(str(export_encoder(encoder, tmp_path / "enc.onnx")))
    producer = {out: n.op_type for n in model.graph.node for out in n.output}
    softmax_inputs = [n.input[0] for n in model.graph.node if n.op_type == "Softmax"]
    assert len(softmax_inputs) == CFG.n_blocks
    assert {producer[i] for i in softmax_inputs} == {"Max"}
