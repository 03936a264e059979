"""Read the rfm graph (keys, links, time columns, stypes) from a dbt manifest.

This is the Python twin of the ``dbt_rfm.rfm_graph()`` macro (``macros/graph/``): the same
declarations, the same rules, the same error messages. ``docs/graph.md`` is the user guide;
in short:

* primary keys: ``meta.rfm.primary_key``, else ``primary_key`` constraints (model-level, else
  column-level), else the one column with both ``unique`` and ``not_null`` tests;
* links: ``foreign_key`` constraints and ``relationships`` tests, their ``to: ref('x')``
  resolved through the declaring node's ``depends_on``;
* a model is in the graph when it has ``meta.rfm``, declares a link, or is a link's parent.

Column types come from the warehouse (:func:`column_types_from_duckdb`,
:func:`column_types_from_catalog`), because the manifest only knows the types a contract
declares.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dbt_rfm.errors import RfmError
from dbt_rfm.graph_rules import Declarations, LinkDecl, assemble_graph
from dbt_rfm.rfm_meta import parse_meta, ref_target
from dbt_rfm.spec import GraphSpec

__all__ = [
    "column_types_from_catalog",
    "column_types_from_duckdb",
    "graph_spec_from_manifest",
    "load_manifest",
]

#: dbt resource types that can be graph tables.
GRAPH_RESOURCE_TYPES = ("model", "seed", "snapshot")

ColumnTypes = Mapping[str, Sequence[tuple[str, str]]]


def load_manifest(manifest: Mapping[str, Any] | str | Path) -> Mapping[str, Any]:
    """Return the manifest as a dict, reading ``manifest.json`` when given a path."""
    if isinstance(manifest, Mapping):
        return manifest
    path = Path(manifest)
    if path.is_dir():
        path = path / "manifest.json"
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise RfmError(f"no dbt manifest at {path}: run `dbt parse` first") from e
    return loaded


def graph_spec_from_manifest(
    manifest: Mapping[str, Any] | str | Path, column_types: ColumnTypes
) -> GraphSpec:
    """Build the :class:`GraphSpec` declared in a dbt project.

    Args:
        manifest: ``manifest.json`` as a dict, or its path (or the ``target/`` folder).
        column_types: warehouse columns per relation, in warehouse order, as
            ``[(column_name, data_type), ...]``, keyed by relation (``"db"."schema"."t"``,
            quotes and case ignored) or by model name. See :func:`column_types_from_duckdb`.

    Returns:
        The graph, equal to ``GraphSpec.from_rows`` of the ``rfm_graph_spec`` table that
        ``dbt build`` writes from the same project.

    Raises:
        RfmError: a declaration is wrong; the message names the dbt model and column.
    """
    loaded = load_manifest(manifest)
    nodes: Mapping[str, Any] = {**loaded["nodes"], **(loaded.get("sources") or {})}
    return assemble_graph(_declarations(nodes), _column_lookup(column_types))


def _declarations(nodes: Mapping[str, Any]) -> Declarations:
    """Everything rfm-relevant in ``manifest['nodes']``, before validation."""
    decl = Declarations()
    for uid, node in nodes.items():
        # The package's own models are never graph tables (meta.rfm there holds scoring settings).
        if node.get("resource_type") not in GRAPH_RESOURCE_TYPES or node.get("package_name") == (
            "dbt_rfm"
        ):
            continue
        decl.add_table(
            uid,
            name=node["name"],
            relation=node.get("relation_name") or "",
            materialized=(node.get("config") or {}).get("materialized"),
            meta=parse_meta(node["name"], _rfm_meta(node)),
        )
        for c in node.get("constraints") or []:
            _add_constraint(decl, nodes, uid, node, c, c.get("columns") or [])
        for col_name, col in (node.get("columns") or {}).items():
            for c in col.get("constraints") or []:
                _add_constraint(decl, nodes, uid, node, c, [col_name])
    for node in nodes.values():
        if node.get("resource_type") == "test":
            _add_test(decl, nodes, node)
    return decl


def _rfm_meta(node: Mapping[str, Any]) -> Any:
    config_meta = (node.get("config") or {}).get("meta") or {}
    if "rfm" in config_meta:
        return config_meta["rfm"]
    return (node.get("meta") or {}).get("rfm")


def _add_constraint(
    decl: Declarations,
    nodes: Mapping[str, Any],
    uid: str,
    node: Mapping[str, Any],
    constraint: Mapping[str, Any],
    columns: Sequence[str],
) -> None:
    kind = constraint.get("type")
    if kind == "primary_key":
        level = "model" if constraint.get("columns") else "column"
        decl.add_key(uid, level, list(columns))
    elif kind == "foreign_key":
        source = f"a foreign_key constraint on model '{node['name']}'"
        parent = _resolve(nodes, node, constraint.get("to"), node["name"], columns, source)
        if parent is not None:
            to_columns = tuple(constraint.get("to_columns") or [])
            decl.add_link(LinkDecl(uid, tuple(columns), parent, to_columns, source))


def _add_test(decl: Declarations, nodes: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    meta = test.get("test_metadata") or {}
    if meta.get("namespace") not in (None, "dbt"):
        return
    name, kwargs = meta.get("name"), meta.get("kwargs") or {}
    uid = test.get("attached_node")
    column = test.get("column_name") or kwargs.get("column_name")
    if uid not in decl.tables or not column:
        return
    if name in ("unique", "not_null"):
        decl.add_tested(uid, name, column)
    elif name == "relationships":
        child = decl.tables[uid]["name"]
        source = f"a relationships test on model '{child}', column '{column}'"
        parent = _resolve(nodes, test, kwargs.get("to"), child, [column], source)
        field = kwargs.get("field")
        if parent is not None:
            decl.add_link(LinkDecl(uid, (column,), parent, (field,) if field else (), source))


def _resolve(
    nodes: Mapping[str, Any],
    declaring: Mapping[str, Any],
    to: Any,
    child: str,
    columns: Sequence[str],
    source: str,
) -> str | None:
    """unique_id of the model a link's ``to: ref('x')`` points at, via ``depends_on``.

    None for a link to a dbt source: sources cannot be graph tables, so such a test or
    constraint is not an rfm link (wrap the source in a model to use it).
    """
    if isinstance(to, str) and to.strip().startswith("source("):
        return None
    target = ref_target(to)
    for uid in (declaring.get("depends_on") or {}).get("nodes") or []:
        node = nodes.get(uid) or {}
        if target is None and to and node.get("relation_name") == to:
            # dbt renders `to` as the relation once the declaring model is compiled
            if str(uid).startswith("source."):
                return None
            if node.get("resource_type") in GRAPH_RESOURCE_TYPES:
                return str(uid)
        elif (
            target is not None
            and node.get("resource_type") in GRAPH_RESOURCE_TYPES
            and node.get("name") == target[1]
            and target[0] in (None, node.get("package_name"))
        ):
            return str(uid)
    raise RfmError(
        f"model '{child}', column '{'+'.join(columns)}': {source} links to unknown model "
        f"{to!s}; 'to' must be ref('<model>') of a model, seed or snapshot in the project"
    )


def _column_lookup(column_types: ColumnTypes) -> Mapping[str, Sequence[tuple[str, str]]]:
    """Key column types by relation/model name with quotes removed, in lower case."""
    return {_relation_key(k): list(v) for k, v in column_types.items()}


def _relation_key(relation: str) -> str:
    return relation.replace('"', "").replace("`", "").lower()


def column_types_from_duckdb(con: Any) -> dict[str, list[tuple[str, str]]]:
    """Every table and view's columns in a DuckDB connection, keyed by rendered relation.

    Args:
        con: a ``duckdb.DuckDBPyConnection``.

    Returns:
        ``{'"db"."schema"."table"': [(column_name, data_type), ...]}``, columns in table order,
        data types as ``DESCRIBE`` prints them (what dbt-duckdb's
        ``get_columns_in_relation`` reads).
    """
    table = con.sql(
        "select database_name, schema_name, table_name, column_name, data_type "
        "from duckdb_columns() where not internal "
        "order by database_name, schema_name, table_name, column_index"
    ).to_arrow_table()
    out: dict[str, list[tuple[str, str]]] = {}
    columns = [table.column(i).to_pylist() for i in range(5)]
    for db, schema, tbl, col, dtype in zip(*columns, strict=True):
        out.setdefault(f'"{db}"."{schema}"."{tbl}"', []).append((col, dtype))
    return out


def column_types_from_catalog(
    catalog: Mapping[str, Any] | str | Path,
) -> dict[str, list[tuple[str, str]]]:
    """Column types from dbt's ``catalog.json`` (``dbt docs generate``), keyed by relation."""
    loaded: Mapping[str, Any] = (
        catalog if isinstance(catalog, Mapping) else json.loads(Path(catalog).read_text())
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for entry in [*loaded.get("nodes", {}).values(), *loaded.get("sources", {}).values()]:
        m = entry["metadata"]
        cols = sorted(entry["columns"].values(), key=lambda c: c["index"])
        out[f'"{m["database"]}"."{m["schema"]}"."{m["name"]}"'] = [
            (c["name"], c["type"]) for c in cols
        ]
    return out
