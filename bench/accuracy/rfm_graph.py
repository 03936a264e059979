"""The demo's declared graph (the package's ``rfm_graph_spec`` model) as a :class:`GraphSpec`.

It carries what the demo declares beyond keys and links: excluded columns, stypes, and the
availability times of the flights' outcomes (``meta.rfm.available_at``), which the samplers
apply. It is built with dbt into a copy of the benchmark database and cached as JSON rows in
``bench/.work/rfm_graph_spec.json``, stamped with :func:`models_fingerprint`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from bench.accuracy.data import DEFAULT_DB, REPO, ensure_database, models_fingerprint
from dbt_rfm.errors import RfmError
from dbt_rfm.spec import GraphSpec

SPEC_JSON = REPO / "bench" / ".work" / "rfm_graph_spec.json"


def declared_graph(db: Path = DEFAULT_DB, cache: Path = SPEC_JSON) -> GraphSpec:
    """The demo graph as declared in dbt; runs ``dbt run --select rfm_graph_spec`` unless
    cached for the current demo models."""
    fingerprint = models_fingerprint()
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    if not isinstance(cached, dict) or cached.get("models") != fingerprint:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cached = {"models": fingerprint, "rows": _build_rows(ensure_database(db))}
        cache.write_text(json.dumps(cached, default=str))
    return GraphSpec.from_rows(cached["rows"])


def _build_rows(db: Path) -> list[dict[str, Any]]:
    work = db.parent / "spec"
    work.mkdir(parents=True, exist_ok=True)
    copy = work / "spec.duckdb"
    shutil.copyfile(db, copy)
    project = REPO / "integration_tests"
    dbt = Path(sys.executable).with_name("dbt")
    env = os.environ | {"DBT_PROFILES_DIR": str(project), "RFM_DUCKDB_PATH": str(copy)}
    cmd = [str(dbt) if dbt.exists() else "dbt", "run", "--select", "rfm_graph_spec",
           "--target-path", str(work / "target"), "--log-path", str(work / "logs")]  # fmt: skip
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RfmError(f"`{' '.join(cmd)}` failed (exit {done.returncode}):\n{done.stdout[-2000:]}")
    con = duckdb.connect(str(copy), read_only=True)
    try:
        rows: list[dict[str, Any]] = (
            con.sql("select * from rfm_graph_spec").to_arrow_table().to_pylist()
        )
    finally:
        con.close()
    return rows


def graph_tables(con: duckdb.DuckDBPyConnection, spec: GraphSpec) -> dict[str, pa.Table]:
    """The graph's tables from ``con`` as Arrow (declared columns only), by model name."""
    out: dict[str, pa.Table] = {}
    for t in spec.tables:
        cols = ", ".join(f'"{c.name}"' for c in t.columns)
        out[t.name] = con.sql(f'select {cols} from "{t.name}"').to_arrow_table()
    return out
