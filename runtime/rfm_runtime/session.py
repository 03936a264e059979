"""Open an artifact (encoder + ICL head ONNX files, and a tree head where fine-tuning wrote
one), check its contract, run it.

CUDA is requested when onnxruntime offers it, then CPU; the provider that actually runs is
read back from ``session.get_providers()`` and logged (an onnxruntime-gpu build lists CUDA as
available even where it falls back to CPU).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from rfm_runtime.contract import METADATA_KEY, TASK_TYPES, ArtifactContract, check_contract
from rfm_runtime.errors import RfmError
from rfm_runtime.labels import ContextLabels
from rfm_runtime.tokenize import TokenBatch, TokenizerConfig
from rfm_runtime.trees import TREES_SUFFIX, TreeHead

log = logging.getLogger("rfm_runtime")

#: The artifact that ships with the package, under ``rfm_runtime/artifacts/``.
DEFAULT_ARTIFACT = Path(__file__).parent / "artifacts" / "rfm-small"
#: Environment variable with the default intra-op thread count (unset: onnxruntime's choice,
#: one per physical core).
THREADS_ENV = "RFM_THREADS"
#: Most query x context pairs one head call attends over: larger query sets are scored in
#: chunks (queries are independent of each other), so that onnxruntime's arena, which keeps
#: its largest allocation for the session's life, stays near 1 GB (20,000 context anchors:
#: 419 queries per call) instead of growing with the query count.
HEAD_PAIRS = 1 << 23
_ORT_TYPES = {"tensor(float)": "float32", "tensor(int64)": "int64", "tensor(bool)": "bool"}


def artifact_files(artifact: str | Path) -> tuple[Path, Path]:
    """``(encoder, icl_head)`` files of an artifact given by prefix or by either file."""
    p = Path(artifact)
    for suffix in (".encoder.onnx", ".icl_head.onnx"):
        if p.name.endswith(suffix):
            p = p.with_name(p.name[: -len(suffix)])
    files = p.with_name(p.name + ".encoder.onnx"), p.with_name(p.name + ".icl_head.onnx")
    lacking = [str(f) for f in files if not f.is_file()]
    if lacking:
        raise RfmError(
            f"artifact '{artifact}' is incomplete: no {', '.join(lacking)} "
            "(an artifact is <prefix>.encoder.onnx plus <prefix>.icl_head.onnx; write one with "
            "dbt_rfm.nn.export.export_artifact, or point meta.rfm.artifact at one)"
        )
    return files


def choose_providers() -> list[str]:
    """CUDA first when this onnxruntime build offers it, then CPU."""
    available = ort.get_available_providers()
    wanted = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []
    return wanted + ["CPUExecutionProvider"]


@dataclass
class RfmSession:
    """An opened, checked artifact.

    Attributes:
        encoder: onnxruntime session of the encoder.
        head: onnxruntime session of the ICL head.
        contract: the encoder's contract (tokenizer settings, d, K).
        model_version: first 12 hex digits of sha256 over the files' bytes (encoder, head, then
            the tree head where there is one).
        providers: execution providers that actually run, best first.
        artifact: the artifact prefix.
        trees: the tree head ``<prefix>.trees.onnx`` when the artifact has one (written by
            ``dbt-rfm finetune`` for one target, :mod:`rfm_runtime.trees`); the model version
            then covers its bytes too.
    """

    encoder: ort.InferenceSession
    head: ort.InferenceSession
    contract: ArtifactContract
    model_version: str
    providers: list[str]
    artifact: Path
    trees: TreeHead | None = None

    @classmethod
    def open(
        cls,
        artifact: str | Path = DEFAULT_ARTIFACT,
        providers: list[str] | None = None,
        tokenizer: TokenizerConfig | None = None,
        threads: int | None = None,
    ) -> RfmSession:
        """Open and check an artifact.

        Args:
            artifact: prefix (``dir/rfm-small``) or either ONNX file.
            providers: execution providers to request; default :func:`choose_providers`.
            tokenizer: tokenizer settings the caller will use; checked against the contract.
            threads: intra-op threads for onnxruntime; default: env var ``RFM_THREADS``
                when set, else onnxruntime's choice (one per physical core).

        Raises:
            RfmError: when a file is missing or its contract does not match this runtime.
        """
        enc_path, head_path = artifact_files(artifact)
        options = session_options(threads)
        requested = providers or choose_providers()
        sessions, contracts, digest = [], [], hashlib.sha256()
        for path in (enc_path, head_path):
            data = path.read_bytes()
            digest.update(data)
            try:
                sess = ort.InferenceSession(data, sess_options=options, providers=requested)
            except Exception as exc:  # onnxruntime raises its own types
                raise RfmError(f"onnxruntime cannot open {path}: {exc}") from exc
            contract = _read_contract(sess, path)
            io = (_io(sess.get_inputs()), _io(sess.get_outputs()))
            check_contract(contract, str(path), io, tokenizer)
            _check_widths(sess, contract, path)
            sessions.append(sess)
            contracts.append(contract)
        enc_c, head_c = contracts
        if (enc_c.role, head_c.role) != ("encoder", "icl_head"):
            raise RfmError(f"artifact {artifact}: roles are {enc_c.role}, {head_c.role}")
        if enc_c.tokenizer != head_c.tokenizer or enc_c.embedding_dim != head_c.embedding_dim:
            raise RfmError(
                f"artifact {artifact}: encoder and head were exported from different nets"
            )
        active = sessions[0].get_providers()
        if requested[0] not in active:
            log.warning("rfm: asked for %s, onnxruntime runs %s", requested[0], active[0])
        log.info("rfm: artifact %s runs on %s", enc_path.name, ", ".join(active))
        net_version = digest.hexdigest()[:12]
        prefix = enc_path.with_name(enc_path.name[: -len(".encoder.onnx")])
        trees = None
        trees_path = prefix.with_name(prefix.name + TREES_SUFFIX)
        if trees_path.is_file():
            trees = TreeHead.open(trees_path, options, requested)
            if trees.spec.model_version != net_version:
                raise RfmError(
                    f"artifact {artifact}: the tree head {trees_path.name} was fitted on net "
                    f"{trees.spec.model_version}, but the encoder and head are {net_version}; "
                    "fine-tune again, or delete the .trees.onnx file to score with the net alone"
                )
            digest.update(trees_path.read_bytes())
        version = digest.hexdigest()[:12]
        return cls(sessions[0], sessions[1], enc_c, version, active, prefix, trees)

    def tokenizer_config(
        self, batch_size: int = 32, target_column: str | tuple[str, ...] | None = None
    ) -> TokenizerConfig:
        """Tokenizer settings matching this artifact."""
        return self.contract.tokenizer_config(batch_size, target_column)

    @property
    def embedding_dim(self) -> int:
        """d."""
        return self.contract.embedding_dim

    def encode(self, tokens: TokenBatch) -> np.ndarray:
        """Anchor embeddings ``float32[B, d]`` of a token batch."""
        if tokens.num_anchors == 0:
            return np.zeros((0, self.embedding_dim), np.float32)
        return np.asarray(self.encoder.run(["embedding"], tokens.trimmed().feeds())[0])

    def class_probs(
        self, query: np.ndarray, context: np.ndarray, labels: ContextLabels
    ) -> np.ndarray:
        """Head class probabilities ``float32[Q, K]``.

        Args:
            query: ``float32[Q, d]`` query embeddings.
            context: ``float32[M, d]`` embeddings of the kept context rows (``labels.keep``).
            labels: the prepared context labels.
        """
        if query.shape[0] == 0:
            return np.zeros((0, self.contract.max_classes), np.float32)
        feeds = {
            "context_embedding": context.astype(np.float32, copy=False),
            "context_class": labels.classes.astype(np.int64, copy=False),
            "context_value": labels.values.astype(np.float32, copy=False),
            "task_type": np.array([TASK_TYPES.index(labels.head_task)], np.int64),
            "num_classes": np.array([labels.num_classes], np.int64),
        }
        query = query.astype(np.float32, copy=False)
        step = max(1, HEAD_PAIRS // max(1, context.shape[0]))
        parts = [
            self.head.run(["class_probs"], feeds | {"query_embedding": query[s : s + step]})[0]
            for s in range(0, query.shape[0], step)
        ]
        return np.concatenate(parts)


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """onnxruntime options: all graph optimizations, ``threads`` intra-op threads, no spinning.

    Idle intra-op threads do not spin: the scorer alternates encoder runs with reading and
    tokenizing cells (DuckDB threads) on the same cores, and spinning workers took those
    cores (2 threads on a loaded 2-core machine: 282 ms per B=64 batch spinning, 211 not).

    Args:
        threads: intra-op threads; ``None`` reads env var ``RFM_THREADS``, and where that is
            unset too, onnxruntime picks (one per physical core).

    Raises:
        RfmError: when ``RFM_THREADS`` is not a positive integer.
    """
    if threads is None and os.environ.get(THREADS_ENV):
        raw = os.environ[THREADS_ENV]
        if not raw.isdigit() or int(raw) < 1:
            raise RfmError(f"{THREADS_ENV}={raw!r}: expected a positive integer thread count")
        threads = int(raw)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return options


def _read_contract(sess: ort.InferenceSession, path: Path) -> ArtifactContract:
    meta = sess.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise RfmError(
            f"artifact {path} carries no '{METADATA_KEY}' metadata; export it with "
            "dbt_rfm.nn.export so the runtime can check what it expects"
        )
    return ArtifactContract.from_json(meta[METADATA_KEY])


def _io(args: list) -> dict[str, str]:
    return {a.name: _ORT_TYPES.get(a.type, a.type) for a in args}


def _check_widths(sess: ort.InferenceSession, contract: ArtifactContract, path: Path) -> None:
    """Fixed trailing widths of the graph (name slots, value hashes, d) match the contract."""
    want = {
        "table_name_ids": contract.tokenizer["name_slots"],
        "column_name_ids": contract.tokenizer["name_slots"],
        "value_ids": contract.tokenizer["value_hashes"],
        "query_embedding": contract.embedding_dim,
        "context_embedding": contract.embedding_dim,
    }
    for arg in sess.get_inputs():
        if arg.name in want and arg.shape[-1] != want[arg.name]:
            raise RfmError(
                f"artifact {path}: input {arg.name} has width {arg.shape[-1]}, "
                f"the contract says {want[arg.name]}"
            )
