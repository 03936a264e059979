"""Session: contract checks, provider choice and logging, model version."""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("torch")

from rfm_runtime import session as session_mod  # noqa: E402
from rfm_runtime.contract import METADATA_KEY  # noqa: E402
from rfm_runtime.errors import RfmError  # noqa: E402
from rfm_runtime.session import RfmSession, artifact_files  # noqa: E402
from rfm_runtime.tokenize import TokenizerConfig  # noqa: E402
from rfm_synthetic import export_small  # noqa: E402


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("art") / "small"
    export_small(prefix, seed=5)
    return prefix


def _tampered(src: Path, dst: Path, edit) -> Path:
    """Copy an artifact, editing the encoder's contract JSON with ``edit(dict)``."""
    enc, head = artifact_files(src)
    model = onnx.load(str(enc))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            raw = json.loads(prop.value)
            if edit(raw) is False:
                model.metadata_props.remove(prop)
            else:
                prop.value = json.dumps(raw)
    onnx.save(model, str(dst) + ".encoder.onnx")
    Path(str(dst) + ".icl_head.onnx").write_bytes(head.read_bytes())
    return dst


def test_opens_logs_provider_and_hashes_bytes(artifact: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="rfm_runtime"):
        sess = RfmSession.open(artifact)
    assert sess.providers == sess.encoder.get_providers()
    assert any(f"runs on {sess.providers[0]}" in r.getMessage() for r in caplog.records)
    enc, head = artifact_files(artifact)
    digest = hashlib.sha256(enc.read_bytes() + head.read_bytes()).hexdigest()
    assert sess.model_version == digest[:12]
    assert RfmSession.open(str(enc)).model_version == sess.model_version  # any file names it
    assert sess.tokenizer_config(8).seq_len == sess.contract.tokenizer["seq_len"]


def test_cuda_is_requested_first_and_fallback_is_logged(
    artifact: Path, caplog, monkeypatch
) -> None:
    monkeypatch.setattr(
        session_mod.ort, "get_available_providers",
        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
    )  # fmt: skip
    assert session_mod.choose_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with caplog.at_level(logging.INFO, logger="rfm_runtime"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sess = RfmSession.open(artifact)
    if "CUDAExecutionProvider" not in sess.providers:  # CPU build or no GPU: say so
        assert any("asked for CUDAExecutionProvider" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(hash_scheme="md5-v0"), "hash scheme 'md5-v0'"),
        (lambda c: c.update(version=99), "contract version 99"),
        (lambda c: c["inputs"].pop("hop"), "declared inputs: missing hop"),
        (lambda c: c["inputs"].update(hop="float32"), "dtype hop: float32"),
        (lambda c: c.update(role="icl_head"), "graph inputs"),
        (lambda c: c["tokenizer"].update(name_slots=3), "width 4, the contract says 3"),
        (lambda c: c.update(colour="red"), "no key 'colour'"),
        (lambda c: False, "carries no 'rfm.contract' metadata"),
    ],
)
def test_contract_mismatch_is_a_clear_error(artifact, tmp_path, edit, message) -> None:
    bad = _tampered(artifact, tmp_path / "bad", edit)
    with pytest.raises(RfmError, match=message):
        RfmSession.open(bad)


def test_seq_len_and_missing_files(artifact: Path, tmp_path: Path) -> None:
    with pytest.raises(RfmError, match="seq_len = 64, the run asks for 128"):
        RfmSession.open(
            artifact, tokenizer=TokenizerConfig(seq_len=128, value_buckets=512, name_buckets=256)
        )
    with pytest.raises(RfmError, match="incomplete"):
        RfmSession.open(tmp_path / "nothing")


def test_runtime_imports_neither_torch_nor_dbt() -> None:
    import subprocess
    import sys

    code = (
        "import sys, rfm_runtime.score, rfm_runtime.ranking; "
        "bad = [m for m in ('torch', 'dbt', 'dbt_rfm', 'pandas') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_threads_come_from_the_argument_then_rfm_threads(artifact: Path, monkeypatch) -> None:
    monkeypatch.setenv("RFM_THREADS", "1")
    opened = RfmSession.open(artifact)
    assert opened.encoder.get_session_options().intra_op_num_threads == 1
    opened = RfmSession.open(artifact, threads=2)
    assert opened.encoder.get_session_options().intra_op_num_threads == 2
    monkeypatch.setenv("RFM_THREADS", "two")
    with pytest.raises(RfmError, match="RFM_THREADS='two'"):
        RfmSession.open(artifact)


def test_head_scores_large_query_sets_in_chunks(artifact: Path, monkeypatch) -> None:
    """Queries are independent: chunked head calls (HEAD_PAIRS) give the one call's result."""
    from rfm_runtime.labels import prepare_labels

    session = RfmSession.open(artifact, threads=1)
    rng = np.random.default_rng(0)
    d = session.embedding_dim
    query = rng.normal(size=(37, d)).astype(np.float32)
    labels = prepare_labels("binary", list(rng.integers(0, 2, 50)), session.contract.max_classes)
    context = rng.normal(size=(len(labels.classes), d)).astype(np.float32)
    whole = session.class_probs(query, context, labels)
    calls: list[int] = []
    head = session.head

    class Counting:
        def run(self, outputs, feeds):
            calls.append(len(feeds["query_embedding"]))
            return head.run(outputs, feeds)

    monkeypatch.setattr(session_mod, "HEAD_PAIRS", 8 * len(labels.classes))
    monkeypatch.setattr(session, "head", Counting())
    chunked = session.class_probs(query, context, labels)
    assert calls == [8, 8, 8, 8, 5]
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)
