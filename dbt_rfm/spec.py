"""GraphSpec: the relational graph declared in dbt, as frozen dataclasses.

Built from ``manifest.json`` by :mod:`dbt_rfm.manifest`, and written into the warehouse by the
``rfm_graph_spec`` macro as one row per (table, column, link membership) -- see
:func:`GraphSpec.to_rows` / :func:`GraphSpec.from_rows`, which define that table's layout.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dbt_rfm.errors import RfmError, did_you_mean

#: Semantic types. ``key`` columns (primary and foreign keys) carry structure, not values.
STYPES = ("numerical", "categorical", "text", "timestamp", "boolean", "key")

#: Columns of the graph spec table written by the ``rfm_graph_spec`` macro, in order.
SPEC_ROW_COLUMNS = (
    "table_name",
    "relation",
    "column_name",
    "column_position",
    "data_type",
    "stype",
    "key_position",
    "is_time_column",
    "available_at",
    "link_name",
    "link_position",
    "link_parent",
    "link_parent_column",
)


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a graph table.

    Attributes:
        name: column name as in the warehouse.
        data_type: warehouse data type, lower case (``bigint``, ``timestamp``, ``varchar``).
        stype: semantic type, one of :data:`STYPES`.
        available_at: the column of the same table that holds when this value becomes known
            (``meta.rfm.available_at``), or None when it is known at the row's time. The value
            is a cell only for anchors strictly after that time (never when it is null).
    """

    name: str
    data_type: str
    stype: str
    available_at: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """One dbt model that takes part in the graph.

    Attributes:
        name: dbt model name (the node name, e.g. ``flights``).
        relation: the rendered relation (``"db"."schema"."flights"``) the SQL reads.
        primary_key: key columns, in order (more than one for a composite key).
        time_column: the row time, or None for a static table.
        columns: every column used (excluded columns are absent), in warehouse order.
    """

    name: str
    relation: str
    primary_key: tuple[str, ...]
    time_column: str | None
    columns: tuple[ColumnSpec, ...]

    def column(self, name: str) -> ColumnSpec:
        """Return the column called ``name`` or raise an RfmError suggesting the closest one."""
        for col in self.columns:
            if col.name == name:
                return col
        names = [c.name for c in self.columns]
        raise RfmError(
            f"model '{self.name}' has no column '{name}'{did_you_mean(name, names)}; "
            f"columns: {', '.join(names)}"
        )

    @property
    def availability_columns(self) -> frozenset[str]:
        """Columns that hold another column's availability time (metadata, not cells)."""
        return frozenset(c.available_at for c in self.columns if c.available_at is not None)

    @property
    def value_columns(self) -> tuple[ColumnSpec, ...]:
        """Columns that become cells: everything but keys and availability times."""
        gates = self.availability_columns
        return tuple(c for c in self.columns if c.stype != "key" and c.name not in gates)


@dataclass(frozen=True)
class LinkSpec:
    """A foreign key: ``child(child_columns) -> parent(parent_columns)``.

    ``parent_columns`` is always the parent's primary key, in key order.
    """

    child: str
    child_columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]

    @property
    def name(self) -> str:
        """Stable readable name, e.g. ``flights.origin->airports``."""
        return f"{self.child}.{'+'.join(self.child_columns)}->{self.parent}"


@dataclass(frozen=True)
class GraphSpec:
    """The relational graph: tables and links, sorted by name so equal graphs compare equal."""

    tables: tuple[TableSpec, ...]
    links: tuple[LinkSpec, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "tables", tuple(sorted(self.tables, key=lambda t: t.name)))
        object.__setattr__(self, "links", tuple(sorted(self.links, key=lambda lk: lk.name)))

    def table(self, name: str) -> TableSpec:
        """Return the table called ``name`` or raise an RfmError suggesting the closest one."""
        for t in self.tables:
            if t.name == name:
                return t
        names = [t.name for t in self.tables]
        raise RfmError(
            f"no model '{name}' in the rfm graph{did_you_mean(name, names)}; "
            f"graph models: {', '.join(names)}"
        )

    def links_from(self, child: str) -> tuple[LinkSpec, ...]:
        """Links whose child is ``child`` (its foreign keys)."""
        return tuple(lk for lk in self.links if lk.child == child)

    def links_to(self, parent: str) -> tuple[LinkSpec, ...]:
        """Links whose parent is ``parent`` (tables that point at it)."""
        return tuple(lk for lk in self.links if lk.parent == parent)

    # -- serialisation -------------------------------------------------------------------

    def to_json(self) -> str:
        """Canonical JSON (sorted), for hashing and for the CLI."""
        return json.dumps(_as_plain(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GraphSpec:
        """Inverse of :meth:`to_json`."""
        raw = json.loads(text)
        return cls(
            tables=tuple(
                TableSpec(
                    name=t["name"],
                    relation=t["relation"],
                    primary_key=tuple(t["primary_key"]),
                    time_column=t["time_column"],
                    columns=tuple(ColumnSpec(**c) for c in t["columns"]),
                )
                for t in raw["tables"]
            ),
            links=tuple(
                LinkSpec(
                    child=lk["child"],
                    child_columns=tuple(lk["child_columns"]),
                    parent=lk["parent"],
                    parent_columns=tuple(lk["parent_columns"]),
                )
                for lk in raw["links"]
            ),
        )

    def to_rows(self) -> list[dict[str, Any]]:
        """Rows of the warehouse graph spec table (columns :data:`SPEC_ROW_COLUMNS`).

        One row per (table, column); a column that is part of one or more links gets one row
        per link, with ``link_name``, ``link_position`` (0-based place in the foreign key),
        ``link_parent`` and ``link_parent_column`` filled.
        """
        rows: list[dict[str, Any]] = []
        for t in self.tables:
            for pos, c in enumerate(t.columns):
                base = {
                    "table_name": t.name,
                    "relation": t.relation,
                    "column_name": c.name,
                    "column_position": pos,
                    "data_type": c.data_type,
                    "stype": c.stype,
                    "key_position": t.primary_key.index(c.name)
                    if c.name in t.primary_key
                    else None,
                    "is_time_column": c.name == t.time_column,
                    "available_at": c.available_at,
                    "link_name": None,
                    "link_position": None,
                    "link_parent": None,
                    "link_parent_column": None,
                }
                links = [lk for lk in self.links_from(t.name) if c.name in lk.child_columns]
                if not links:
                    rows.append(base)
                for lk in links:
                    i = lk.child_columns.index(c.name)
                    rows.append(
                        base
                        | {
                            "link_name": lk.name,
                            "link_position": i,
                            "link_parent": lk.parent,
                            "link_parent_column": lk.parent_columns[i],
                        }
                    )
        return rows

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> GraphSpec:
        """Inverse of :meth:`to_rows` (row order does not matter)."""
        rows = sorted(
            rows,
            key=lambda r: (r["table_name"], r["column_position"], r["link_name"] or ""),
        )
        tables: dict[str, dict[str, Any]] = {}
        links: dict[tuple[str, str], dict[int, tuple[str, str, str]]] = {}
        for r in rows:
            t = tables.setdefault(
                r["table_name"],
                {"relation": r["relation"], "pk": {}, "time": None, "cols": {}},
            )
            t["cols"][r["column_name"]] = ColumnSpec(
                r["column_name"], r["data_type"], r["stype"], r.get("available_at")
            )
            if r["key_position"] is not None:
                t["pk"][int(r["key_position"])] = r["column_name"]
            if r["is_time_column"]:
                t["time"] = r["column_name"]
            if r["link_name"] is not None:
                links.setdefault((r["table_name"], r["link_name"]), {})[int(r["link_position"])] = (
                    r["column_name"],
                    r["link_parent"],
                    r["link_parent_column"],
                )
        return cls(
            tables=tuple(
                TableSpec(
                    name=name,
                    relation=t["relation"],
                    primary_key=tuple(t["pk"][i] for i in sorted(t["pk"])),
                    time_column=t["time"],
                    columns=tuple(t["cols"].values()),
                )
                for name, t in tables.items()
            ),
            links=tuple(
                LinkSpec(
                    child=child,
                    child_columns=tuple(parts[i][0] for i in sorted(parts)),
                    parent=parts[0][1],
                    parent_columns=tuple(parts[i][2] for i in sorted(parts)),
                )
                for (child, _), parts in links.items()
            ),
        )


def _as_plain(spec: GraphSpec) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(spec)
