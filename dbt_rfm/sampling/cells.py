"""Cells of a sampled subgraph, in process: join values to nodes and unpivot.

Same rules as the SQL macro ``dbt_rfm.subgraph_cells`` (``docs/sampling.md``):

* one cell per (sampled node whose row exists, value column); columns of stype ``key`` and
  availability times are not cells; null values are kept as cells with null ``num_value`` and
  ``text_value``;
* ``num_value``: numerical as double, boolean as 0/1, timestamp as days relative to
  ``anchor_time``; ``text_value``: categorical and text, cast to text;
* ``rel_days``: row time minus anchor time in days, null for static tables;
* a column with an availability time (``ColumnSpec.available_at``) has a cell only where that
  time is not null and before ``anchor_time`` (strictly: a value that becomes known at the
  moment of the prediction is not an input);
* sorted by ``entity_id, anchor_time, hop, table_name, row_key`` and column position.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rfm_runtime.schema import CELLS

from dbt_rfm.errors import RfmError
from dbt_rfm.sampling.index import GraphIndex, TableIndex
from dbt_rfm.sampling.keys import timestamp_us, value_text
from dbt_rfm.spec import GraphSpec

__all__ = ["MICROS_PER_DAY", "cells"]

#: Microseconds per day, the unit of ``rel_days`` and of timestamp cells.
MICROS_PER_DAY = 86_400_000_000.0

_NODE_COLUMNS = (
    "entity_id",
    "anchor_time",
    "table_name",
    "row_key",
    "parent_table",
    "parent_key",
    "hop",
)


def cells(
    spec: GraphSpec | GraphIndex, tables: Mapping[str, pa.Table] | None, subgraph: pa.Table
) -> pa.Table:
    """Unpivot the values of every sampled node into cells.

    Args:
        spec: the graph, or a prebuilt :class:`GraphIndex` (then ``tables`` may be None).
        tables: one Arrow table per graph table, by dbt model name.
        subgraph: sampled nodes, schema :data:`rfm_runtime.schema.SUBGRAPH`.

    Returns:
        A table of schema :data:`rfm_runtime.schema.CELLS`, in the order stated above.
    """
    index = spec if isinstance(spec, GraphIndex) else GraphIndex.build(spec, tables or {})
    parts: list[pa.Table] = []
    for t in index.tables:
        sub = subgraph.filter(pc.equal(subgraph["table_name"], t.spec.name))
        rows = t.rows_of(sub["row_key"].combine_chunks())
        found = rows >= 0
        sub, rows = sub.filter(pa.array(found)), rows[found]
        parts.extend(_table_cells(t, sub, rows))
    schema = CELLS.append(pa.field("column_position", pa.int32()))
    if not parts:
        return schema.empty_table().drop_columns(["column_position"])
    out = pa.concat_tables([p.select(schema.names).cast(schema) for p in parts])
    out = out.sort_by(
        [
            (c, "ascending")
            for c in ("entity_id", "anchor_time", "hop", "table_name", "row_key", "column_position")
        ]
    )
    return out.drop_columns(["column_position"]).combine_chunks()


def _table_cells(t: TableIndex, sub: pa.Table, rows: np.ndarray) -> list[pa.Table]:
    n = len(rows)
    anchor_us = np.asarray(timestamp_us(sub["anchor_time"]), dtype=np.int64)
    if t.time_us is None:
        rel_days = pa.nulls(n, pa.float64())
    else:
        rel = (t.time_us[rows] - anchor_us).astype(np.float64) / MICROS_PER_DAY
        rel_days = pa.array(rel, mask=~t.visible_ever[rows])
    take = pa.array(rows, pa.int64())
    base = {c: sub[c] for c in _NODE_COLUMNS}
    known: dict[str, pa.Array] = {}  # availability column -> known at the anchor time
    out = []
    gates = t.spec.availability_columns
    for pos, col in enumerate(t.spec.columns):
        if col.stype == "key" or col.name in gates:
            continue
        what = f"model '{t.spec.name}', column '{col.name}'"
        num, text = _encode(col.stype, _values(t, col.name, take), anchor_us, what)
        part = pa.table(
            base
            | {
                "column_name": pa.array([col.name] * n, pa.string()),
                "stype": pa.array([col.stype] * n, pa.string()),
                "num_value": num,
                "text_value": text,
                "rel_days": rel_days,
                "column_position": pa.array(np.full(n, pos, dtype=np.int32)),
            }
        )
        at = col.available_at
        if at is not None:
            if at not in known:
                at_us = timestamp_us(_values(t, at, take), f"model '{t.spec.name}', column '{at}'")
                known[at] = pc.fill_null(pc.less(at_us, pa.array(anchor_us)), False)
            part = part.filter(known[at])
        out.append(part)
    return out


def _values(t: TableIndex, column: str, take: pa.Array) -> pa.ChunkedArray:
    if column not in t.data.column_names:
        raise RfmError(f"model '{t.spec.name}', column '{column}': missing from the Arrow table")
    return t.data[column].take(take)


def _encode(
    stype: str, values: pa.ChunkedArray, anchor_us: np.ndarray, what: str
) -> tuple[pa.Array, pa.Array]:
    n = len(values)
    no_text, no_num = pa.nulls(n, pa.string()), pa.nulls(n, pa.float64())
    arr = values.combine_chunks()
    if stype == "numerical":
        return arr.cast(pa.float64()), no_text
    if stype == "boolean":
        return arr.cast(pa.bool_()).cast(pa.float64()), no_text
    if stype == "timestamp":
        us = timestamp_us(arr, what)
        valid = np.asarray(pc.is_valid(us), dtype=bool)
        days = (np.asarray(us.fill_null(0), dtype=np.int64) - anchor_us) / MICROS_PER_DAY
        return pa.array(days, pa.float64(), mask=~valid), no_text
    if stype in ("categorical", "text"):
        return no_num, value_text(arr, what)
    raise RfmError(
        f"{what}: stype '{stype}' has no cell encoding; expected numerical, boolean, "
        "timestamp, categorical or text"
    )
