"""End to end: time the rfm nodes of the demo's ``dbt build`` from ``run_results.json``.

dbt runs in a subprocess in ``integration_tests`` with its own DuckDB file, target and log
paths (so parallel runs do not collide) and ``RFM_ARTIFACT`` set to the artifact to time.
``rfm_embeddings`` is excluded: with 2 dbt threads it would run beside ``rfm_predictions``
and share its 2 cores.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

from bench.scoring.common import DEMO

NODES = ("rfm_subgraph", "rfm_cells", "rfm_predictions")


def dbt_build(workdir: Path, db: Path, artifact: Path, select: list[str] | None) -> dict[str, Any]:
    """Run ``dbt build`` of the demo and return node times and counts.

    Args:
        workdir: scratch folder for dbt's target and log paths.
        db: the DuckDB file (``RFM_DUCKDB_PATH``).
        artifact: artifact prefix (``RFM_ARTIFACT``).
        select: dbt ``--select`` arguments; ``None`` builds the whole demo.

    Returns:
        ``{"wall_s", "nodes": {name: seconds}, "reused_encodings", "query_anchors",
        "context_anchors", "sampled_anchors", "predictions"}``; ``reused_encodings`` is what
        ``rfm_predictions`` printed (anchor embeddings its cache served, 0 when none).

    Raises:
        RuntimeError: when dbt fails (the tail of its log is in the message).
    """
    env = dict(os.environ, DBT_PROFILES_DIR=str(DEMO), RFM_DUCKDB_PATH=str(db))
    env["RFM_ARTIFACT"] = str(artifact)
    target = workdir / "target"
    dbt = Path(sys.executable).with_name("dbt")
    cmd = [str(dbt), "build", "--target-path", str(target), "--log-path", str(workdir / "logs")]
    cmd += ["--select", *select] if select else ["--exclude", "rfm_embeddings"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=DEMO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"dbt build failed ({' '.join(cmd)}):\n{proc.stdout[-3000:]}")
    results = json.loads((target / "run_results.json").read_text())["results"]
    nodes = {
        r["unique_id"].rsplit(".", 1)[-1]: float(r["execution_time"])
        for r in results
        if r["unique_id"].startswith("model.") and r["unique_id"].rsplit(".", 1)[-1] in NODES
    }
    reused = re.search(r"(\d+) anchor encodings reused", proc.stdout)
    return {
        "wall_s": wall,
        "nodes": nodes,
        "reused_encodings": int(reused.group(1)) if reused else 0,
        **counts(db),
    }


def counts(db: Path) -> dict[str, int]:
    """Anchors and predictions in a built demo database."""
    con = duckdb.connect(str(db), read_only=True)
    con.execute("set enable_progress_bar = false")
    try:
        rows = con.execute(
            "select "
            "(select count(*) from rfm_anchors where role = 'query'), "
            "(select count(*) from rfm_anchors where role = 'context'), "
            "(select count(*) from (select distinct entity_id, anchor_time from rfm_subgraph)), "
            "(select count(*) from rfm_predictions)"
        ).fetchall()[0]
    finally:
        con.close()
    keys = ("query_anchors", "context_anchors", "sampled_anchors", "predictions")
    return dict(zip(keys, (int(v) for v in rows), strict=True))


def summarise(build: dict[str, Any]) -> dict[str, float]:
    """Anchors/second of the three rfm nodes together and of the scoring node alone."""
    nodes = build["nodes"]
    total = sum(nodes.get(n, 0.0) for n in NODES)
    q, c = build["query_anchors"], build["context_anchors"]
    return {
        "rfm_nodes_s": total,
        "query_anchors_per_s": q / total,
        "encoded_anchors_per_s": (q + c) / total,
        "predictions_node_query_anchors_per_s": q / nodes["rfm_predictions"],
    }
