"""The fine-tuned net as a new, versioned ONNX artifact, plus ``finetune.json``.

``<out>/<target>-<hash>.encoder.onnx`` and ``.icl_head.onnx``: ``<hash>`` is the first 8 hex
digits of sha256 over both exported files, so a different net never overwrites another. The
contract's free-form ``net`` entry gains ``finetune: {base, target, task, best_step}`` so an
artifact says where it came from; the runtime checks the rest of the contract as usual.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import onnx
from rfm_runtime.contract import METADATA_KEY, ArtifactContract

from dbt_rfm.nn.encoder import RelationalEncoder
from dbt_rfm.nn.export import artifact_paths, export_artifact
from dbt_rfm.nn.icl_head import ICLHead

REPORT = "finetune.json"


def _stamp(path: Path, provenance: dict[str, Any]) -> bytes:
    """Add ``provenance`` under ``net.finetune`` of the file's contract; returns the bytes."""
    model = onnx.load(str(path))
    for entry in model.metadata_props:
        if entry.key == METADATA_KEY:
            contract = ArtifactContract.from_json(entry.value)
            net = dict(contract.net or {}) | {"finetune": provenance}
            entry.value = json.dumps({**json.loads(contract.to_json()), "net": net}, sort_keys=True)
    data = model.SerializeToString()
    path.write_bytes(data)
    return data


def safe_name(name: str) -> str:
    """``name`` with every character outside ``[A-Za-z0-9_.-]`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "target"


def write_artifact(
    encoder: RelationalEncoder,
    head: ICLHead,
    out: str | Path,
    target: str,
    provenance: dict[str, Any],
) -> Path:
    """Export the net with its provenance as ``<out>/<target>-<hash>``; returns that prefix."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{safe_name(target)}.tmp{os.getpid()}"
    digest = hashlib.sha256()
    for path in export_artifact(encoder, head, tmp):
        digest.update(_stamp(path, provenance))
    prefix = out / f"{safe_name(target)}-{digest.hexdigest()[:8]}"
    for src, dst in zip(artifact_paths(tmp), artifact_paths(prefix), strict=True):
        os.replace(src, dst)
    return prefix


def write_report(out: str | Path, report: dict[str, Any]) -> Path:
    """Write ``<out>/finetune.json`` (sorted keys, indented); returns its path."""
    path = Path(out) / REPORT
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return path
