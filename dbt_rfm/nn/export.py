"""torch -> ONNX: the encoder and ICL head as two files with the contract in their metadata.

``export_artifact(encoder, head, "artifacts/rfm-small")`` writes
``rfm-small.encoder.onnx`` and ``rfm-small.icl_head.onnx`` (opset 17, dynamic batch,
sequence, query and context sizes). Uses torch's TorchScript exporter (``dynamo=False``):
the dynamo exporter needs ``onnxscript``, which the ``train`` extra does not install.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from rfm_runtime.contract import (
    CONTRACT_VERSION,
    ENCODER_OUTPUTS,
    HEAD_INPUTS,
    HEAD_OUTPUTS,
    METADATA_KEY,
    TOKENIZER_CONTRACT_KEYS,
    ArtifactContract,
)
from rfm_runtime.hashing import HASH_SCHEME
from rfm_runtime.tokenize import TokenBatch, empty_batch
from torch import nn

from dbt_rfm.nn.config import NetConfig
from dbt_rfm.nn.encoder import RelationalEncoder
from dbt_rfm.nn.icl_head import ICLHead

OPSET = 17
ENCODER_SEMANTICS = "anchor embedding: mean of the entity row's tokens after the last block"
HEAD_SEMANTICS = (
    "class scores over K classes: binary 0/1, multiclass class index, regression quantile bin "
    "of the context labels (rfm_runtime.labels); ranking is binary per candidate"
)


def artifact_paths(prefix: str | Path) -> tuple[Path, Path]:
    """``(<prefix>.encoder.onnx, <prefix>.icl_head.onnx)``."""
    p = Path(prefix)
    return p.with_name(p.name + ".encoder.onnx"), p.with_name(p.name + ".icl_head.onnx")


def contract_for(cfg: NetConfig, role: str) -> ArtifactContract:
    """The contract an artifact exported from ``cfg`` carries for ``role``."""
    if role == "encoder":
        inputs, outputs, semantics = TokenBatch.input_dtypes(), ENCODER_OUTPUTS, ENCODER_SEMANTICS
    else:
        inputs, outputs, semantics = HEAD_INPUTS, HEAD_OUTPUTS, HEAD_SEMANTICS
    net = {k: v for k, v in cfg.to_dict().items() if k not in TOKENIZER_CONTRACT_KEYS}
    return ArtifactContract(
        version=CONTRACT_VERSION,
        role=role,
        hash_scheme=HASH_SCHEME,
        tokenizer={k: getattr(cfg, k) for k in TOKENIZER_CONTRACT_KEYS},
        embedding_dim=cfg.d_model,
        max_classes=cfg.max_classes,
        inputs=dict(inputs),
        outputs=dict(outputs),
        semantics=semantics,
        net=net,
    )


def example_inputs(cfg: NetConfig, batch: int = 2, seq_len: int = 8) -> tuple[torch.Tensor, ...]:
    """Small valid encoder inputs (anchor token only), for tracing."""
    tb = empty_batch(batch, cfg.tokenizer())
    tb = TokenBatch(**{k: v[:, :seq_len].copy() for k, v in tb.feeds().items()})
    tb.stype[:, 0], tb.node_index[:, 0], tb.column_index[:, 0] = 1, 0, 0
    return tuple(torch.from_numpy(v) for v in tb.feeds().values())


def head_example_inputs(
    cfg: NetConfig, queries: int = 3, context: int = 5
) -> tuple[torch.Tensor, ...]:
    """Small valid head inputs, for tracing."""
    d = cfg.d_model
    return (
        torch.zeros(queries, d),
        torch.zeros(context, d),
        torch.zeros(context, dtype=torch.int64),
        torch.zeros(context),
        torch.zeros(1, dtype=torch.int64),
        torch.full((1,), 2, dtype=torch.int64),
    )


def _to_onnx(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    inputs: list[str],
    outputs: list[str],
    axes: dict[str, dict[int, str]],
    contract: ArtifactContract,
) -> onnx.ModelProto:
    buf = io.BytesIO()
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            buf,  # type: ignore[arg-type]
            dynamo=False,
            opset_version=OPSET,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
        )
    model = onnx.load_from_string(buf.getvalue())
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, contract.to_json()
    model.producer_name = "dbt-rfm"
    return model


def export_encoder(encoder: RelationalEncoder, path: str | Path) -> Path:
    """Write the encoder as ONNX with its contract; returns the path."""
    cfg = encoder.cfg
    names = list(TokenBatch.input_dtypes())
    axes = {n: {0: "batch", 1: "seq"} for n in names} | {"embedding": {0: "batch"}}
    model = _to_onnx(
        encoder,
        example_inputs(cfg),
        names,
        list(ENCODER_OUTPUTS),
        axes,
        contract_for(cfg, "encoder"),
    )
    onnx.save(model, str(path))
    return Path(path)


def export_head(head: ICLHead, cfg: NetConfig, path: str | Path) -> Path:
    """Write the ICL head as ONNX with its contract; returns the path."""
    axes = {
        "query_embedding": {0: "queries"},
        "context_embedding": {0: "context"},
        "context_class": {0: "context"},
        "context_value": {0: "context"},
        "class_logits": {0: "queries"},
        "class_probs": {0: "queries"},
    }
    model = _to_onnx(
        head,
        head_example_inputs(cfg),
        list(HEAD_INPUTS),
        list(HEAD_OUTPUTS),
        axes,
        contract_for(cfg, "icl_head"),
    )
    onnx.save(model, str(path))
    return Path(path)


def export_artifact(
    encoder: RelationalEncoder, head: ICLHead, prefix: str | Path
) -> tuple[Path, Path]:
    """Export both graphs next to each other; returns their paths."""
    enc_path, head_path = artifact_paths(prefix)
    enc_path.parent.mkdir(parents=True, exist_ok=True)
    export_encoder(encoder, enc_path)
    export_head(head, encoder.cfg, head_path)
    return enc_path, head_path


def to_numpy_inputs(args: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    """Tensors -> numpy arrays (for parity checks)."""
    return [a.detach().cpu().numpy() for a in args]
