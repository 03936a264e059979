"""The benchmark's DuckDB file: the demo's graph tables, built by dbt when missing."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from dbt_rfm.errors import RfmError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DB = REPO / "bench" / ".work" / "flights.duckdb"
TABLES = ("flights", "planes", "airlines", "airports", "weather")
MODELS = REPO / "integration_tests" / "models"


def models_fingerprint() -> str:
    """A hash of the demo's model files (SQL and YAML under ``raw/`` and ``demo/``)."""
    digest = hashlib.sha256()
    for f in sorted([*MODELS.glob("raw/*"), *MODELS.glob("demo/*")]):
        digest.update(f.relative_to(MODELS).as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


def ensure_database(path: Path = DEFAULT_DB) -> Path:
    """Return ``path``, first running ``dbt run --select raw demo`` into it if it is missing or
    was built from other versions of the demo's models.

    dbt runs in ``integration_tests/`` with its own target and log folders next to ``path``,
    so it does not collide with other dbt runs of that project.
    """
    stamp = path.with_name(path.name + ".models")
    fingerprint = models_fingerprint()
    if path.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return path
    path.unlink(missing_ok=True)
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
    stamp.write_text(fingerprint)
    return path
