"""Export: torch and onnxruntime agree within 1e-4; the contract rides in the metadata."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from rfm_runtime.contract import METADATA_KEY, ArtifactContract  # noqa: E402
from rfm_runtime.tokenize import TokenBatch, tokenize  # noqa: E402
from rfm_synthetic import export_small, make_cells, small_net_config  # noqa: E402

from dbt_rfm.nn.export import contract_for  # noqa: E402

CFG = small_net_config()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    encoder, head, (enc_path, head_path) = export_small(
        tmp_path_factory.mktemp("art") / "t", seed=3
    )
    opts = ["CPUExecutionProvider"]
    return (
        encoder,
        head,
        ort.InferenceSession(str(enc_path), providers=opts),
        ort.InferenceSession(str(head_path), providers=opts),
    )


def _random_tokens(rng: np.random.Generator, anchors: int, seq_len: int) -> TokenBatch:
    """Real token structure from random cells, then cut to ``seq_len`` positions."""
    cells, _ = make_cells(anchors, seed=int(rng.integers(1 << 30)), max_orders=12)
    b = tokenize(cells, None, CFG.tokenizer())
    return b.take((slice(None), slice(0, seq_len)))


@pytest.mark.parametrize(("anchors", "seq_len"), [(1, 5), (3, 17), (8, 40), (16, 64)])
def test_encoder_parity(exported, anchors: int, seq_len: int) -> None:
    encoder, _, sess, _ = exported
    tokens = _random_tokens(np.random.default_rng(anchors * 100 + seq_len), anchors, seq_len)
    with torch.no_grad():
        expected = encoder(*(torch.from_numpy(a) for a in tokens.feeds().values())).numpy()
    got = sess.run(["embedding"], tokens.feeds())[0]
    assert got.shape == (anchors, CFG.d_model)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("queries", "context", "task", "classes"),
                         [(1, 1, 0, 2), (7, 30, 1, 8), (33, 5, 2, 3)])  # fmt: skip
def test_head_parity(exported, queries: int, context: int, task: int, classes: int) -> None:
    _, head, _, sess = exported
    rng = np.random.default_rng(queries + context)
    feeds = {
        "query_embedding": rng.normal(size=(queries, CFG.d_model)).astype(np.float32),
        "context_embedding": rng.normal(size=(context, CFG.d_model)).astype(np.float32),
        "context_class": rng.integers(0, classes, size=context).astype(np.int64),
        "context_value": rng.normal(size=context).astype(np.float32),
        "task_type": np.array([task], np.int64),
        "num_classes": np.array([classes], np.int64),
    }
    with torch.no_grad():
        logits, probs = head(*(torch.from_numpy(v) for v in feeds.values()))
    got_logits, got_probs = sess.run(["class_logits", "class_probs"], feeds)
    np.testing.assert_allclose(got_logits, logits.numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(got_probs, probs.numpy(), atol=1e-4)


def test_contract_is_embedded(exported) -> None:
    _, _, enc, head = exported
    for sess, role in ((enc, "encoder"), (head, "icl_head")):
        raw = sess.get_modelmeta().custom_metadata_map[METADATA_KEY]
        contract = ArtifactContract.from_json(raw)
        assert contract == contract_for(CFG, role)
        assert set(contract.inputs) == {i.name for i in sess.get_inputs()}
        assert contract.tokenizer["seq_len"] == CFG.seq_len
