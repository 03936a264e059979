"""The benchmark's DuckDB file: the demo's graph tables, built by dbt when missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dbt_rfm.errors import RfmError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DB = REPO / "bench" / ".work" / "flights.duckdb"
TABLES = ("flights", "planes", "airlines", "airports", "weather")


def ensure_database(path: Path = DEFAULT_DB) -> Path:
    """Return ``path``, first running ``dbt run --select raw demo`` into it if it is missing.

    dbt runs in ``integration_tests/`` with its own target and log folders next to ``path``,
    so it does not collide with other dbt runs of that project.
    """
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    project = REPO / "integration_tests"
    dbt = Path(sys.executable).with_name("dbt")
    env = os.environ | {"DBT_PROFILES_DIR": str(project), "RFM_DUCKDB_PATH": str(path)}
    cmd = [
        str(dbt) if dbt.exists() else "dbt",
        "run",
        "--select",
        "raw",
        "demo",
        "--target-path",
        str(path.parent / "target"),
        "--log-path",
        str(path.parent / "logs"),
    ]
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not path.exists():
        raise RfmError(
            f"building the benchmark database with `{' '.join(cmd)}` failed "
            f"(exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return path
