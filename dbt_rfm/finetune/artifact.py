"""The fine-tuned net as a new, versioned ONNX artifact, plus its report.

``<out>/<target>-<hash>.encoder.onnx`` and ``.icl_head.onnx``: ``<hash>`` is the first 8 hex
digits of sha256 over both exported files, so a different net never overwrites another; the
run's report is ``<out>/<target>-<hash>.finetune.json`` beside them. The contract's free-form
``net`` entry gains ``finetune: {base, target, task, best_step}`` so an artifact says where it
came from; the runtime checks the rest of the contract as usual. A tree head, when fine-tuning
fitted one that beats the net, is ``<out>/<target>-<hash>.trees.onnx`` (the hash covers it).
Files are written under a temporary name and renamed; when a rename fails the earlier ones are
undone, so a failed run leaves no half-written file and no part of an artifact under a final
name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
from rfm_runtime.contract import METADATA_KEY, ArtifactContract
from rfm_runtime.trees import TREES_SUFFIX

from dbt_rfm.nn.encoder import RelationalEncoder
from dbt_rfm.nn.export import artifact_paths, export_artifact
from dbt_rfm.nn.icl_head import ICLHead

#: Suffix of the report beside the artifact: ``<prefix>.finetune.json``.
REPORT = ".finetune.json"


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
    trees: Callable[[Path], bytes | None] | None = None,
) -> Path:
    """Export the net with its provenance as ``<out>/<target>-<hash>``; returns that prefix.

    ``trees``, when given, is called with the exported net's temporary prefix (a complete
    artifact) and returns the tree head to write beside it (``<prefix>.trees.onnx``) or None;
    the hash then covers it too, and nothing reaches a final name unless every step worked.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{safe_name(target)}.tmp{os.getpid()}"

    def files(prefix: Path) -> list[Path]:
        return [*artifact_paths(prefix), prefix.with_name(prefix.name + TREES_SUFFIX)]

    try:
        digest = hashlib.sha256()
        for path in export_artifact(encoder, head, tmp):
            digest.update(_stamp(path, provenance))
        model = trees(tmp) if trees is not None else None
        if model is not None:
            files(tmp)[-1].write_bytes(model)
            digest.update(model)
        prefix = out / f"{safe_name(target)}-{digest.hexdigest()[:8]}"
        placed: list[Path] = []  # final files this call created (not same-hash ones before it)
        try:
            for src, dst in zip(files(tmp), files(prefix), strict=True):
                if not src.exists():
                    continue
                new = not dst.exists()
                os.replace(src, dst)
                if new:
                    placed.append(dst)
        except BaseException:  # never leave an encoder without its head under a final name
            for path in placed:
                path.unlink(missing_ok=True)
            raise
    finally:
        for path in files(tmp):
            path.unlink(missing_ok=True)
    return prefix


def report_path(prefix: str | Path) -> Path:
    """The report of the artifact ``prefix``: ``<prefix>.finetune.json``."""
    prefix = Path(prefix)
    return prefix.with_name(prefix.name + REPORT)


def write_report(prefix: str | Path, report: dict[str, Any]) -> Path:
    """Write the report of the artifact ``prefix`` (sorted keys, indented), through a
    temporary file; returns its path (:func:`report_path`)."""
    path = report_path(prefix)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
