"""Render the sampling macros to SQL text through dbt, outside any dbt project.

Tests and benchmarks need the exact SQL that ``dbt_rfm.sample_subgraph`` and
``dbt_rfm.subgraph_cells`` compile to, for graphs given as Python objects. This module writes a
throw-away dbt project that installs the dbt_rfm package from the source checkout, and renders
any number of macro calls with one ``dbt run-operation`` (the SQL comes back through dbt's log
events). Nothing is executed against a warehouse; the profile is an in-memory DuckDB.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbt_rfm.errors import RfmError

__all__ = ["CellsCall", "SubgraphCall", "package_root", "render"]

_BEGIN, _END = "RFM_RENDER_BEGIN", "RFM_RENDER_END"

_MACRO = """
{% macro rfm_render(calls) %}
  {% for c in calls %}
    {% if c["kind"] == "subgraph" %}
      {% set sql = dbt_rfm.sample_subgraph(c["graph"], c["entity"], c["anchors"], c["hops"],
                                           c["fanouts"]) %}
    {% else %}
      {% set sql = dbt_rfm.subgraph_cells(c["graph"], c["subgraph"]) %}
    {% endif %}
    {% do log("RFM_RENDER_BEGIN " ~ loop.index0 ~ "\\n" ~ sql ~ "\\nRFM_RENDER_END", info=False) %}
  {% endfor %}
{% endmacro %}
"""


@dataclass(frozen=True)
class SubgraphCall:
    """Arguments of ``dbt_rfm.sample_subgraph`` (``graph`` as from ``graph_dict``)."""

    graph: dict[str, Any]
    entity: str
    anchors: str
    hops: int | None = None
    fanouts: Sequence[int] | None = None
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CellsCall:
    """Arguments of ``dbt_rfm.subgraph_cells``."""

    graph: dict[str, Any]
    subgraph: str
    vars: dict[str, Any] = field(default_factory=dict)


def package_root() -> Path:
    """The dbt_rfm package folder (the source checkout holding ``dbt_project.yml``)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "dbt_project.yml").exists() or not (root / "macros").is_dir():
        raise RfmError(
            f"the dbt_rfm macros are not next to the Python package ({root}); rendering the "
            "sampling macros needs the source checkout"
        )
    return root


_PROJECT: Path | None = None


def _project() -> Path:
    global _PROJECT
    if _PROJECT is None:
        d = Path(tempfile.mkdtemp(prefix="rfm_render_"))
        atexit.register(shutil.rmtree, d, ignore_errors=True)
        (d / "macros").mkdir()
        (d / "macros" / "rfm_render.sql").write_text(_MACRO)
        (d / "dbt_project.yml").write_text(
            "name: rfm_render\nversion: '0.1.0'\nconfig-version: 2\nprofile: rfm_render\n"
            "macro-paths: [macros]\nmodel-paths: [models]\n"
            "models:\n  dbt_rfm:\n    +enabled: false\n"
        )
        (d / "profiles.yml").write_text(
            "rfm_render:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
            "      path: ':memory:'\n"
        )
        (d / "packages.yml").write_text(f"packages:\n  - local: {package_root()}\n")
        _invoke(d, ["deps", "--quiet"])
        _PROJECT = d
    return _PROJECT


def _invoke(project: Path, args: list[str]) -> list[str]:
    from dbt.cli.main import dbtRunner

    messages: list[str] = []
    errors: list[str] = []

    def keep(event: Any) -> None:
        if event.info.name in ("JinjaLogInfo", "JinjaLogDebug"):
            messages.append(event.info.msg)
        elif event.info.level == "error":
            errors.append(event.info.msg)

    common = ["--project-dir", str(project), "--profiles-dir", str(project)]
    extra = ["--target-path", str(project / "target"), "--log-path", str(project / "logs")]
    res = dbtRunner(callbacks=[keep]).invoke(
        [*args, *common, *(extra if args[0] != "deps" else [])]
    )
    if not res.success:
        why = "\n".join(errors) or str(res.exception)
        raise RfmError(f"dbt {args[0]} failed while rendering the sampling macros: {why}")
    return messages


def render(calls: Sequence[SubgraphCall | CellsCall]) -> list[str]:
    """Render each call to its SQL text with one dbt invocation per distinct ``vars``.

    Returns:
        The SQL of each call, in order.
    """
    out: list[str | None] = [None] * len(calls)
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(calls):
        groups.setdefault(json.dumps(c.vars, sort_keys=True), []).append(i)
    for vars_json, idx in groups.items():
        payload = [_payload(calls[i]) for i in idx]
        args = ["run-operation", "rfm_render", "--args", json.dumps({"calls": payload})]
        if vars_json != "{}":
            args += ["--vars", vars_json]
        sqls = _parse(_invoke(_project(), args))
        if len(sqls) != len(idx):
            raise RfmError(f"rendered {len(sqls)} SQL statements for {len(idx)} calls")
        for i, sql in zip(idx, sqls, strict=True):
            out[i] = sql
    return [s or "" for s in out]


def _payload(c: SubgraphCall | CellsCall) -> dict[str, Any]:
    if isinstance(c, SubgraphCall):
        return {
            "kind": "subgraph",
            "graph": c.graph,
            "entity": c.entity,
            "anchors": c.anchors,
            "hops": c.hops,
            "fanouts": list(c.fanouts) if c.fanouts is not None else None,
        }
    return {"kind": "cells", "graph": c.graph, "subgraph": c.subgraph}


def _parse(messages: list[str]) -> list[str]:
    found: dict[int, str] = {}
    for m in messages:
        if m.startswith(_BEGIN):
            head, _, body = m.partition("\n")
            found[int(head.split()[1])] = body.rsplit(_END, 1)[0]
    return [found[i] for i in sorted(found)]
