"""Shared helpers of the scoring benchmark: paths and the artifact to time."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "integration_tests"
SHIPPED = ROOT / "runtime" / "rfm_runtime" / "artifacts" / "rfm-small"
THREADS = 2

#: Order of one target's cells, as dbt_rfm.scoring reads them (contiguous per anchor).
CELL_ORDER = "c.anchor_time, c.entity_id, c.hop, c.table_name, c.row_key, c.column_name"


def untrained_artifact(prefix: Path) -> Path:
    """Export a freshly initialised net (``build_net`` defaults, seed 0) under ``prefix``.

    Speed and memory do not depend on the weights, so an untrained net times like a trained one.
    """
    from dbt_rfm.nn.export import export_artifact
    from dbt_rfm.nn.train import build_net

    encoder, head = build_net()
    export_artifact(encoder, head, prefix)
    return prefix


def choose_artifact(workdir: Path) -> tuple[Path, str]:
    """The shipped pretrained net when present, else an untrained export; with a label."""
    if SHIPPED.with_name(SHIPPED.name + ".encoder.onnx").is_file():
        return SHIPPED, "shipped rfm-small (pretrained)"
    return untrained_artifact(workdir / "untrained" / "rfm-small"), "untrained build_net export"
