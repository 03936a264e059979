"""The artifact contract: what an ONNX file promises, stored in its ``metadata_props``.

An artifact is two ONNX files with one prefix: ``<name>.encoder.onnx`` (tokens -> anchor
embeddings) and ``<name>.icl_head.onnx`` (query and labelled context embeddings -> class
scores). Each carries an :class:`ArtifactContract` as JSON under :data:`METADATA_KEY`; the
runtime checks it against what it produces (:func:`check_contract`) when it opens a session.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from rfm_runtime.errors import RfmError
from rfm_runtime.hashing import HASH_SCHEME
from rfm_runtime.tokenize import TokenBatch, TokenizerConfig

#: Version of the contract format and of the token/label semantics. Bump on any change.
CONTRACT_VERSION = 4
METADATA_KEY = "rfm.contract"
ROLES = ("encoder", "icl_head")
#: Tokenizer settings that the net was trained with (the rest are per run).
TOKENIZER_CONTRACT_KEYS = ("seq_len", "value_buckets", "value_hashes", "name_buckets", "name_slots")

#: ICL head inputs, in order (see docs/model.md).
HEAD_INPUTS: dict[str, str] = {
    "query_embedding": "float32",  # [Q, d]
    "context_embedding": "float32",  # [N, d]
    "context_class": "int64",  # [N] class index 0..C-1 (binary 0/1, regression bin)
    "context_value": "float32",  # [N] standardised label (regression), 0 otherwise
    "task_type": "int64",  # [1] TASK_TYPES index
    "num_classes": "int64",  # [1] C
}
ENCODER_OUTPUTS = {"embedding": "float32"}  # [B, d]
HEAD_OUTPUTS = {"class_logits": "float32", "class_probs": "float32"}  # [Q, max_classes]
#: Task types as the head sees them; ranking is scored as binary per candidate.
TASK_TYPES = ("binary", "regression", "multiclass")


def check_keys(raw: Mapping[str, Any], allowed: Iterable[str], what: str) -> None:
    """Raise an RfmError naming the first unknown key and the closest allowed one."""
    allowed = list(allowed)
    for key in raw:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise RfmError(f"{what} has no key '{key}'{hint}; keys: {', '.join(allowed)}")


@dataclass(frozen=True)
class ArtifactContract:
    """What one ONNX file of an artifact promises.

    Attributes:
        version: :data:`CONTRACT_VERSION` it was written with.
        role: ``encoder`` or ``icl_head``.
        hash_scheme: :data:`rfm_runtime.hashing.HASH_SCHEME` of the tokens it was trained on.
        tokenizer: the :data:`TOKENIZER_CONTRACT_KEYS` settings.
        embedding_dim: d, the anchor embedding width.
        max_classes: K, the width of the head's class outputs.
        inputs: ``{input name: numpy dtype}`` in input order.
        outputs: ``{output name: numpy dtype}``.
        semantics: one line saying what the outputs mean.
        net: free-form net hyper-parameters (blocks, heads), for the record.
    """

    version: int
    role: str
    hash_scheme: str
    tokenizer: dict[str, int]
    embedding_dim: int
    max_classes: int
    inputs: dict[str, str]
    outputs: dict[str, str]
    semantics: str = ""
    net: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ArtifactContract:
        """Build from parsed JSON; unknown keys are errors that suggest the right key."""
        check_keys(raw, [f.name for f in fields(cls)], "the artifact contract")
        missing = [
            f.name for f in fields(cls) if f.name not in raw and f.name not in ("semantics", "net")
        ]
        if missing:
            raise RfmError(f"the artifact contract lacks {', '.join(missing)}")
        return cls(**raw)

    def to_json(self) -> str:
        """Canonical JSON for ``metadata_props``."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ArtifactContract:
        """Inverse of :meth:`to_json`."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RfmError(f"the artifact contract is not valid JSON: {exc}") from exc
        return cls.from_dict(raw)

    def tokenizer_config(
        self, batch_size: int = 32, target_column: str | tuple[str, ...] | None = None
    ) -> TokenizerConfig:
        """The tokenizer settings this artifact needs, with per-run options added."""
        return TokenizerConfig(**self.tokenizer, batch_size=batch_size, target_column=target_column)


def expected_io(role: str) -> tuple[dict[str, str], dict[str, str]]:
    """The inputs and outputs (name -> dtype) this runtime feeds and reads for ``role``."""
    if role == "encoder":
        return TokenBatch.input_dtypes(), ENCODER_OUTPUTS
    if role == "icl_head":
        return HEAD_INPUTS, HEAD_OUTPUTS
    raise RfmError(f"artifact role '{role}' is not one of {', '.join(ROLES)}")


def check_contract(
    contract: ArtifactContract,
    where: str,
    session_io: tuple[dict[str, str], dict[str, str]] | None = None,
    tokenizer: TokenizerConfig | None = None,
) -> None:
    """Raise an RfmError when an artifact's contract does not match this runtime.

    Args:
        contract: the contract read from the artifact.
        where: the artifact file, for messages.
        session_io: ``(inputs, outputs)`` name -> dtype as onnxruntime reports them.
        tokenizer: the tokenizer settings the caller means to use, if fixed.
    """
    problems: list[str] = []
    if contract.version != CONTRACT_VERSION:
        problems.append(f"contract version {contract.version}, runtime speaks {CONTRACT_VERSION}")
    if contract.hash_scheme != HASH_SCHEME:
        problems.append(
            f"hash scheme '{contract.hash_scheme}', runtime hashes with '{HASH_SCHEME}'"
        )
    if contract.role not in ROLES:
        problems.append(f"role '{contract.role}', expected one of {', '.join(ROLES)}")
    else:
        inputs, outputs = expected_io(contract.role)
        problems += _diff("declared inputs", contract.inputs, inputs)
        problems += _diff("declared outputs", contract.outputs, outputs)
        if session_io is not None:
            problems += _diff("graph inputs", session_io[0], inputs)
            problems += _diff("graph outputs", session_io[1], outputs)
    missing = [k for k in TOKENIZER_CONTRACT_KEYS if k not in contract.tokenizer]
    if missing:
        problems.append(f"tokenizer settings lack {', '.join(missing)}")
    elif tokenizer is not None:
        for key in TOKENIZER_CONTRACT_KEYS:
            if contract.tokenizer[key] != getattr(tokenizer, key):
                problems.append(
                    f"tokenizer {key} = {contract.tokenizer[key]}, "
                    f"the run asks for {getattr(tokenizer, key)}"
                )
    if problems:
        raise RfmError(f"artifact {where} does not match this runtime: " + "; ".join(problems))


def _diff(what: str, found: Mapping[str, str], expected: Mapping[str, str]) -> list[str]:
    if dict(found) == dict(expected):  # fed by name: order does not matter
        return []
    extra = [k for k in found if k not in expected]
    lacking = [k for k in expected if k not in found]
    wrong = [
        f"{k}: {found[k]} (expected {v})"
        for k, v in expected.items()
        if k in found and found[k] != v
    ]
    parts = [
        f"unexpected {', '.join(extra)}" if extra else "",
        f"missing {', '.join(lacking)}" if lacking else "",
    ]
    parts += [f"dtype {w}" for w in wrong]
    return [f"{what}: " + ", ".join(p for p in parts if p)]
