"""Test helpers: run dbt on a temporary copy of a fixture project (own DuckDB file and target).

Used by ``test_manifest*.py`` and ``test_graph_macro*.py``. Each project copy has its own
folders and database file, so tests (and engineers running them in parallel) never collide.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "graph_shapes"

#: Warehouse column types of the fixture models (as DuckDB's DESCRIBE prints them), keyed by
#: model name; test_graph_macro.py checks them against the built warehouse.
FIXTURE_COLUMN_TYPES: dict[str, list[tuple[str, str]]] = {
    "airports": [("faa", "VARCHAR"), ("airport_name", "VARCHAR"), ("alt", "DOUBLE")],
    "weather": [("origin", "VARCHAR"), ("time_hour", "TIMESTAMP"), ("temp", "DOUBLE")],
    "flights": [
        ("flight_id", "BIGINT"),
        ("departed_at", "TIMESTAMP"),
        ("hour", "TIMESTAMP"),
        ("origin", "VARCHAR"),
        ("dest", "VARCHAR"),
        ("delay", "INTEGER"),
        ("route_code", "SMALLINT"),
        ("note", "VARCHAR"),
        ("payload", "VARCHAR[]"),
        ("delay_known_at", "TIMESTAMP"),
    ],
    "employee": [
        ("employee_id", "BIGINT"),
        ("manager_id", "INTEGER"),
        ("dept_id", "INTEGER"),
        ("is_remote", "BOOLEAN"),
        ("hired_on", "DATE"),
        ("skills", "VARCHAR[]"),
    ],
    "department": [("dept_id", "INTEGER"), ("head_id", "BIGINT"), ("dept_name", "VARCHAR")],
    "unrelated": [("id", "INTEGER"), ("label", "VARCHAR")],
    "visits": [("employee_id", "BIGINT"), ("day", "DATE")],
}


@dataclass(frozen=True)
class DbtRun:
    """Outcome of one dbt invocation: success, and every message dbt reported (one line)."""

    success: bool
    text: str


@dataclass
class DbtProject:
    """A dbt project folder with its own DuckDB file, target and log folders."""

    path: Path
    db: Path
    build_results: dict[str, Any] = field(default_factory=dict)  # kept by fixtures

    def dbt(self, *args: str) -> DbtRun:
        """Run ``dbt <args>`` in this process (dbt imports once, then each call takes ~1 s)."""
        from dbt.cli.main import dbtRunner

        env = {
            "DBT_PROFILES_DIR": str(self.path),
            "DBT_PROJECT_DIR": str(self.path),
            "DBT_TARGET_PATH": str(self.path / "target"),
            "DBT_LOG_PATH": str(self.path / "logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "RFM_DUCKDB_PATH": str(self.db),
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            res = dbtRunner().invoke([*args, "--quiet"])
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        messages = [str(res.exception)] if res.exception else []
        for r in getattr(res.result, "results", None) or []:
            messages.append(str(getattr(r, "message", "") or ""))
        return DbtRun(bool(res.success), " ".join(" ".join(messages).split()))

    @property
    def manifest(self) -> dict[str, Any]:
        """``target/manifest.json`` of the last dbt call."""
        loaded: dict[str, Any] = json.loads((self.path / "target" / "manifest.json").read_text())
        return loaded

    @property
    def run_results(self) -> dict[str, Any]:
        """``target/run_results.json`` of the last dbt call."""
        loaded: dict[str, Any] = json.loads((self.path / "target" / "run_results.json").read_text())
        return loaded


def copy_fixture(tmp: Path, source: Path = FIXTURE) -> DbtProject:
    """Copy a fixture project to ``tmp`` with packages.yml pointing at this repository."""
    dest = tmp / source.name
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (dest / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    # what `dbt deps` does for a local package, without its few seconds of start-up
    (dest / "dbt_packages").mkdir()
    (dest / "dbt_packages" / "dbt_rfm").symlink_to(REPO, target_is_directory=True)
    return DbtProject(dest, tmp / f"{source.name}.duckdb")
