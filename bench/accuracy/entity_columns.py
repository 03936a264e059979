"""The entity's own columns (the "LightGBM on the entity table" arm, and part of the other).

Only what is known at the anchor time: a plane's static columns; for a flight, its schedule
(carrier, airports, distance, scheduled hour / minute / weekday in UTC) and its plane's static
columns -- never its own outcome (delays, air time, cancellation).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from dbt_rfm.aggregates import ANCHORS, register_anchors
from dbt_rfm.errors import RfmError, did_you_mean

_PLANE_COLUMNS = """
    p.year_built, p.engines, p.seats, p.speed,
    p.plane_type, p.manufacturer, p.model, p.engine
"""

#: entity table -> (SELECT over ANCHORS as ``a`` with ``anchor_idx``, categorical columns).
ENTITY_SQL: dict[str, tuple[str, tuple[str, ...]]] = {
    "planes": (
        f"""
        select a.anchor_idx, {_PLANE_COLUMNS}
        from {ANCHORS} as a left join planes as p on p.tailnum = a.entity_id
        """,
        ("plane_type", "manufacturer", "model", "engine"),
    ),
    "flights": (
        f"""
        select a.anchor_idx, f.carrier, f.origin, f.dest, f.distance,
               hour(f.scheduled_departure) as hour_utc,
               minute(f.scheduled_departure) as minute,
               dayofweek(f.scheduled_departure) as weekday,
               {_PLANE_COLUMNS}
        from {ANCHORS} as a
        left join flights as f on f.flight_id::varchar = a.entity_id
        left join planes as p on p.tailnum = f.tailnum
        """,
        ("carrier", "origin", "dest", "plane_type", "manufacturer", "model", "engine"),
    ),
}


@dataclass(frozen=True)
class EntityColumns:
    """Raw entity columns of anchors, in anchor order.

    Attributes:
        numeric: name -> float64 ``[N]`` (NaN for NULL).
        categorical: name -> object ``[N]`` of str or None.
    """

    numeric: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]


def entity_columns(con: duckdb.DuckDBPyConnection, entity: str, anchors: pa.Table) -> EntityColumns:
    """Read the own columns of ``entity`` for every anchor (``entity_id``, ``anchor_time``)."""
    if entity not in ENTITY_SQL:
        raise RfmError(f"no entity columns for table '{entity}'{did_you_mean(entity, ENTITY_SQL)}")
    sql, cats = ENTITY_SQL[entity]
    register_anchors(con, anchors)
    try:
        table = con.sql(f"select * from ({sql}) order by anchor_idx").to_arrow_table()
    finally:
        con.unregister(ANCHORS)
    if table.num_rows != anchors.num_rows:
        raise RfmError(
            f"entity columns of '{entity}': {table.num_rows} rows for "
            f"{anchors.num_rows} anchors (duplicate keys?)"
        )
    numeric, categorical = {}, {}
    for name in table.column_names[1:]:
        col = table.column(name)
        if name in cats:
            categorical[name] = np.asarray(col.to_pylist(), dtype=object)
        else:
            numeric[name] = col.to_numpy(zero_copy_only=False).astype(np.float64)
    return EntityColumns(numeric, categorical)


def encode_categories(values: np.ndarray, train_rows: np.ndarray) -> np.ndarray:
    """Integer codes (as float64 ``[N]``) from the vocabulary seen in ``train_rows``.

    Values never seen in training, and NULLs, become NaN (LightGBM: missing).

    Args:
        values: object ``[N]`` of str or None.
        train_rows: bool ``[N]``, the training rows.
    """
    vocab = sorted({v for v in values[train_rows] if v is not None})
    index = {v: float(i) for i, v in enumerate(vocab)}
    return np.array([index.get(v, np.nan) if v is not None else np.nan for v in values])
