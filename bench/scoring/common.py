"""Shared helpers of the scoring benchmark: paths and the artifact to time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbt_rfm.nn.config import NetConfig

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "integration_tests"
SHIPPED = ROOT / "runtime" / "rfm_runtime" / "artifacts" / "rfm-small"
THREADS = 2

#: Order of one target's cells, as dbt_rfm.scoring reads them (contiguous per anchor).
CELL_ORDER = "c.anchor_time, c.entity_id, c.hop, c.table_name, c.row_key, c.column_name"


def untrained_artifact(prefix: Path, cfg: NetConfig | None = None) -> Path:
    """Export a freshly initialised net (``build_net(cfg)``, defaults when None, seed 0) under
    ``prefix``.

    Speed and memory do not depend on the weights, so an untrained net times like a trained one.
    """
    from dbt_rfm.nn.export import export_artifact
    from dbt_rfm.nn.train import build_net

    encoder, head = build_net(cfg)
    export_artifact(encoder, head, prefix)
    return prefix


def choose_artifact(workdir: Path) -> tuple[Path, str]:
    """The shipped pretrained net when it opens under this runtime, else an untrained export."""
    from rfm_runtime.errors import RfmError
    from rfm_runtime.session import RfmSession

    if SHIPPED.with_name(SHIPPED.name + ".encoder.onnx").is_file():
        try:
            RfmSession.open(SHIPPED, providers=["CPUExecutionProvider"])
            return SHIPPED, "shipped rfm-small (pretrained)"
        except RfmError as exc:  # e.g. exported under an older contract version
            print(f"shipped artifact not usable here ({exc}); timing an untrained export")
    return untrained_artifact(workdir / "untrained" / "rfm-small"), "untrained build_net export"
