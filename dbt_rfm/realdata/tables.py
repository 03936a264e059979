"""Lift real tables into a SynthDB: Arrow types normalised, spec built from declared keys.

Loaders name the keys, links, time columns and the few stype choices that data types cannot
tell (a ``varchar`` is categorical unless named as text); everything else follows from the
data type, as the warehouse spec macro infers it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from dbt_rfm.errors import RfmError, where
from dbt_rfm.spec import ColumnSpec, GraphSpec, LinkSpec, TableSpec
from dbt_rfm.synth.db import SynthDB, check_db


@dataclass(frozen=True)
class TableDecl:
    """What a loader declares about one table.

    Attributes:
        key: primary key columns.
        time_column: row time column, or None for a static table.
        links: ``(child columns, parent table)``; the parent's primary key is the target.
        text: ``varchar`` columns that are free text (the rest are categorical).
        categorical: numeric columns that are codes rather than quantities.
    """

    key: tuple[str, ...]
    time_column: str | None = None
    links: tuple[tuple[tuple[str, ...], str], ...] = ()
    text: tuple[str, ...] = ()
    categorical: tuple[str, ...] = field(default=())


def normalize(table: pa.Table) -> pa.Table:
    """Cast every column to a SynthDB type: bigint, double, varchar, boolean, timestamp[us].

    Integers become int64, decimals and floats float64, any string type string, dates and
    timestamps naive ``timestamp[us]``.
    """
    cols = []
    for name in table.column_names:
        col = table[name]
        t = col.type
        if pa.types.is_integer(t):
            target: pa.DataType = pa.int64()
        elif pa.types.is_decimal(t) or pa.types.is_floating(t):
            target = pa.float64()
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or t == pa.string_view():
            target = pa.string()
        elif pa.types.is_boolean(t):
            target = pa.bool_()
        elif pa.types.is_date(t) or pa.types.is_timestamp(t):
            target = pa.timestamp("us")
            if pa.types.is_timestamp(t) and t.tz is not None:
                col = pc.cast(col, pa.timestamp(t.unit))  # naive UTC
        else:
            raise RfmError(f"column '{name}': Arrow type {t} has no SynthDB data type")
        cols.append(pc.cast(col, target))
    return pa.table(cols, names=table.column_names)


_DATA_TYPES = {
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.string(): "varchar",
    pa.bool_(): "boolean",
    pa.timestamp("us"): "timestamp",
}


def build_db(
    name: str,
    tables: Mapping[str, pa.Table],
    decls: Mapping[str, TableDecl],
    relation_prefix: str = "",
) -> SynthDB:
    """Build and check a SynthDB from normalised tables and their declarations.

    Raises:
        RfmError: a declared column is missing, or the data breaks the spec (see
            :func:`dbt_rfm.synth.db.check_db`).
    """
    specs, links = [], []
    for tname, decl in decls.items():
        data = tables[tname]
        keyish = set(decl.key) | {c for cols, _ in decl.links for c in cols}
        for c in [
            *keyish,
            *decl.text,
            *decl.categorical,
            *([decl.time_column] if decl.time_column else []),
        ]:
            if c not in data.column_names:
                raise RfmError(f"{where(tname, c)}: declared but not in the data")
        cols = []
        for cname in data.column_names:
            dtype = _DATA_TYPES[data[cname].type]
            cols.append(ColumnSpec(cname, dtype, _stype(cname, dtype, decl, keyish)))
        specs.append(
            TableSpec(tname, f'{relation_prefix}"{tname}"', decl.key, decl.time_column, tuple(cols))
        )
        for child_cols, parent in decl.links:
            links.append(LinkSpec(tname, child_cols, parent, decls[parent].key))
    db = SynthDB(GraphSpec(tuple(specs), tuple(links)), dict(tables), name)
    check_db(db)
    return db


def _stype(name: str, dtype: str, decl: TableDecl, keyish: set[str]) -> str:
    if name in keyish:
        return "key"
    if dtype == "timestamp":
        return "timestamp"
    if dtype == "boolean":
        return "boolean"
    if dtype == "varchar":
        return "text" if name in decl.text else "categorical"
    return "categorical" if name in decl.categorical else "numerical"


def select(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """Keep ``columns`` in that order (an RfmError names a missing one)."""
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise RfmError(f"expected columns {missing}, found {table.column_names}")
    return table.select(list(columns))
