"""SynthDB: a relational database held in memory, with the GraphSpec that describes it.

The same shape carries synthetic databases (:func:`dbt_rfm.synth.generate`) and real ones
loaded from registry packages (:mod:`dbt_rfm.realdata`), so pretraining code reads one type.
:func:`check_db` proves a database honours its spec: unique non-null primary keys, links
that point at a primary key of the same data type with no dangling keys, timestamp time
columns, and Arrow types that match the declared warehouse data types.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from rfm_runtime.schema import KEY_SEPARATOR

from dbt_rfm.errors import RfmError, where
from dbt_rfm.spec import STYPES, GraphSpec, TableSpec

#: Arrow type for each warehouse data type a SynthDB uses.
ARROW_TYPES: dict[str, pa.DataType] = {
    "bigint": pa.int64(),
    "double": pa.float64(),
    "varchar": pa.string(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us"),
}


@dataclass(frozen=True)
class SynthDB:
    """A database: its graph spec and one Arrow table per spec table.

    Attributes:
        spec: tables, keys, time columns, stypes and links.
        tables: table name -> Arrow table whose columns are exactly the spec's columns.
        name: a label for logs and reports (``synth_42``, ``jaffle_shop``, ``tpch_sf0.01``).
    """

    spec: GraphSpec
    tables: dict[str, pa.Table]
    name: str = ""

    def num_rows(self) -> dict[str, int]:
        """Row count per table."""
        return {name: t.num_rows for name, t in self.tables.items()}


def row_keys(table: pa.Table, key: tuple[str, ...]) -> pa.Array:
    """Row keys as text (composite keys joined with ``|``), as the samplers render them.

    Returns:
        string[N] array, one key per row.
    """
    parts = [pc.cast(table[c], pa.string()) for c in key]
    if len(parts) == 1:
        return parts[0].combine_chunks() if isinstance(parts[0], pa.ChunkedArray) else parts[0]
    joined = pc.binary_join_element_wise(*parts, KEY_SEPARATOR)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def check_db(db: SynthDB) -> None:
    """Raise an RfmError naming the model and column when ``db`` breaks its spec."""
    names = {t.name for t in db.spec.tables}
    if names != set(db.tables):
        raise RfmError(
            f"database '{db.name}': spec tables {sorted(names)} != data tables {sorted(db.tables)}"
        )
    for t in db.spec.tables:
        _check_table(t, db.tables[t.name])
    for lk in db.spec.links:
        parent = db.spec.table(lk.parent)
        child = db.spec.table(lk.child)
        if tuple(lk.parent_columns) != tuple(parent.primary_key):
            raise RfmError(
                f"link {lk.name}: expected the parent's primary key {parent.primary_key}, "
                f"found {lk.parent_columns}"
            )
        for cc, pcn in zip(lk.child_columns, lk.parent_columns, strict=True):
            ct, pt = child.column(cc).data_type, parent.column(pcn).data_type
            if ct != pt:
                raise RfmError(
                    f"{where(lk.child, cc)}: link to '{lk.parent}.{pcn}' has type {ct}, "
                    f"the key has type {pt}"
                )
        ctab = db.tables[lk.child]
        valid = pc.is_valid(ctab[lk.child_columns[0]])
        for c in lk.child_columns[1:]:
            valid = pc.and_(valid, pc.is_valid(ctab[c]))
        ckeys = pc.filter(row_keys(ctab, lk.child_columns), valid)
        pkeys = row_keys(db.tables[lk.parent], parent.primary_key)
        dangling = pc.sum(pc.invert(pc.is_in(ckeys, value_set=pkeys))).as_py() or 0
        if dangling:
            raise RfmError(
                f"{where(lk.child, '+'.join(lk.child_columns))}: {dangling} keys have no row "
                f"in '{lk.parent}'"
            )


def _check_table(t: TableSpec, data: pa.Table) -> None:
    expected = [c.name for c in t.columns]
    if data.column_names != expected:
        raise RfmError(f"{where(t.name)}: columns {data.column_names} != spec {expected}")
    for c in t.columns:
        if c.stype not in STYPES:
            raise RfmError(f"{where(t.name, c.name)}: unknown stype '{c.stype}'")
        want = ARROW_TYPES.get(c.data_type)
        if want is None or data[c.name].type != want:
            raise RfmError(
                f"{where(t.name, c.name)}: data type {c.data_type} but Arrow type "
                f"{data[c.name].type}"
            )
    if t.time_column is not None and t.column(t.time_column).data_type != "timestamp":
        raise RfmError(f"{where(t.name, t.time_column)}: the time column must be a timestamp")
    if t.time_column is not None and data[t.time_column].null_count:
        raise RfmError(f"{where(t.name, t.time_column)}: the time column has nulls")
    for k in t.primary_key:
        if t.column(k).stype != "key" or data[k].null_count:
            raise RfmError(f"{where(t.name, k)}: key columns need stype 'key' and no nulls")
    keys = row_keys(data, t.primary_key)
    if pc.count_distinct(keys).as_py() != data.num_rows:
        raise RfmError(f"{where(t.name, '+'.join(t.primary_key))}: primary key is not unique")
