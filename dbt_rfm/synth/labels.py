"""Labels of a target (YAML form) over an anchor table, computed in process with numpy.

Used to pick non-degenerate casts for random targets and to give pretraining its ground
truth without a warehouse. Semantics follow :mod:`dbt_rfm.pql`: rows of the aggregated table
linked to the entity with time in ``(anchor + start, anchor + end]``; COUNT, SUM and EXISTS
are 0 for an empty window, AVG, MIN, MAX, FIRST, LAST and LIST_DISTINCT drop the anchor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dbt_rfm.errors import RfmError
from dbt_rfm.synth.db import SynthDB, row_keys

US_PER = {
    "seconds": 10**6,
    "minutes": 60 * 10**6,
    "hours": 3600 * 10**6,
    "days": 86_400 * 10**6,
    "weeks": 7 * 86_400 * 10**6,
}
_CMP = {
    "=": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
}


def aggregate_values(
    db: SynthDB, entity: str, agg: Mapping[str, Any], anchors: pa.Table
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate one aggregate for every anchor.

    Args:
        entity: the entity table.
        agg: YAML aggregate ``{fn, table, column, start, end, unit, where, link}``.
        anchors: ANCHORS table (``entity_id`` text, ``anchor_time`` timestamp[us]).

    Returns:
        ``(values, defined)``: object[A] values (float, text, or a list of texts for
        LIST_DISTINCT) and bool[A], False where the aggregate is undefined.
    """
    fn = str(agg["fn"]).upper()
    table = db.spec.table(str(agg["table"]))
    links = [lk for lk in db.spec.links_from(table.name) if lk.parent == entity]
    if agg.get("link") is not None:
        links = [lk for lk in links if list(lk.child_columns) == list(agg["link"])]
    if len(links) != 1 or table.time_column is None:
        raise RfmError(f"model '{table.name}': need one link to '{entity}' and a time column")
    data = db.tables[table.name]
    ent = db.spec.table(entity)
    ekeys = row_keys(db.tables[entity], ent.primary_key)
    child_ent = pc.index_in(row_keys(data, links[0].child_columns), value_set=ekeys)
    anchor_ent = pc.index_in(anchors["entity_id"], value_set=ekeys)
    cidx = child_ent.fill_null(-1).to_numpy()
    aidx = anchor_ent.fill_null(-1).to_numpy()
    t = _us(data[table.time_column])
    keep = (cidx >= 0) & _where(data, agg.get("where"))
    column = str(agg.get("column", "*"))
    col = None if column == "*" else data[column]
    unit = US_PER[str(agg.get("unit", "days"))]
    start = agg.get("start", 0)
    lo = -(2**62) if start is None else int(start) * unit
    hi = int(agg["end"]) * unit
    a_t = _us(anchors["anchor_time"])
    values = np.empty(anchors.num_rows, dtype=object)
    defined = np.zeros(anchors.num_rows, dtype=bool)
    n_ent = len(ekeys)
    for at in np.unique(a_t):
        rows = np.flatnonzero(keep & (t > at + lo) & (t <= at + hi))
        per_ent, ok = _reduce(fn, cidx[rows], t[rows], col, rows, n_ent)
        sel = np.flatnonzero((a_t == at) & (aidx >= 0))
        values[sel] = per_ent[aidx[sel]]
        defined[sel] = ok[aidx[sel]]
    return values, defined


def compute_labels(db: SynthDB, target: Mapping[str, Any], anchors: pa.Table) -> pa.Table:
    """Labels of an aggregate target for ``anchors``, after its entity filter and cast.

    Returns:
        Table ``entity_id``, ``anchor_time``, ``label`` (float64 for binary and regression,
        string for multiclass, list<string> for ranking); filtered-out and undefined anchors
        are dropped.
    """
    entity = str(target["entity"])
    values, ok = aggregate_values(db, entity, target["aggregate"], anchors)
    ef = target.get("entity_filter")
    if ef:
        fv, fok = aggregate_values(db, entity, ef["aggregate"], anchors)
        ok &= fok & _cast(fv, ef["cast"])
    task = target["task"]
    if target.get("cast"):
        values = _cast(values, target["cast"]).astype(np.float64)
    out = anchors.filter(pa.array(ok))
    kept = values[ok]
    if task in ("binary", "regression"):
        label = pa.array(kept.astype(np.float64), pa.float64())
    elif task == "multiclass":
        label = pa.array([str(v) for v in kept], pa.string())
    else:
        label = pa.array(list(kept), pa.list_(pa.string()))
    return out.append_column("label", label)


def _us(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _cast(values: np.ndarray, cast: Mapping[str, Any]) -> np.ndarray:
    op = str(cast["op"])
    if op not in _CMP:
        raise RfmError(f"cast op '{op}' is not supported in process; use one of {list(_CMP)}")
    num = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return np.asarray(_CMP[op](num, float(cast["value"])), dtype=bool)


def _where(data: pa.Table, where: Any) -> np.ndarray:
    """Row mask of a list of ``{column, op, value}`` comparisons (AND); nulls fail them."""
    mask = np.ones(data.num_rows, dtype=bool)
    for cond in [] if where is None else (where if isinstance(where, list) else [where]):
        if set(cond) - {"column", "op", "value"}:
            raise RfmError(f"in-process labels support plain comparisons only, found {cond}")
        col = data[cond["column"]]
        op = str(cond["op"]).upper()
        if op in ("IS NULL", "IS NOT NULL"):
            isnull = pc.is_null(col).to_numpy(zero_copy_only=False)
            mask &= isnull if op == "IS NULL" else ~isnull
            continue
        fn = {
            "=": pc.equal,
            "!=": pc.not_equal,
            ">": pc.greater,
            ">=": pc.greater_equal,
            "<": pc.less,
            "<=": pc.less_equal,
        }[op]
        mask &= fn(col, pa.scalar(cond["value"])).fill_null(False).to_numpy(zero_copy_only=False)
    return mask


def _reduce(
    fn: str, ent: np.ndarray, t: np.ndarray, col: pa.ChunkedArray | None, rows: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate rows per entity. Returns object[n] values and bool[n] defined."""
    count = np.bincount(ent, minlength=n).astype(np.float64)
    out = np.empty(n, dtype=object)
    if fn in ("COUNT", "EXISTS") and col is None:
        out[:] = list(count if fn == "COUNT" else (count > 0).astype(np.float64))
        return out, np.ones(n, dtype=bool)
    if col is None:
        raise RfmError(f"{fn} needs a column")
    taken = col.take(pa.array(rows, pa.int64()))
    if (
        fn in ("FIRST", "LAST", "LIST_DISTINCT")
        or not pa.types.is_floating(taken.type)
        and not pa.types.is_integer(taken.type)
    ):
        return _reduce_text(fn, ent, t, taken, n)
    x = pc.cast(taken, pa.float64()).fill_null(np.nan).to_numpy()
    valid = ~np.isnan(x)
    nn = np.bincount(ent[valid], minlength=n)
    if fn in ("COUNT", "EXISTS"):
        out[:] = list(nn.astype(np.float64) if fn == "COUNT" else (nn > 0).astype(np.float64))
        return out, np.ones(n, dtype=bool)
    s = np.bincount(ent[valid], weights=x[valid], minlength=n)
    if fn == "SUM":
        out[:] = list(s)
        return out, np.ones(n, dtype=bool)
    if fn == "AVG":
        out[:] = list(s / np.maximum(nn, 1))
    elif fn in ("MIN", "MAX"):
        acc = np.full(n, np.inf if fn == "MIN" else -np.inf)
        (np.minimum if fn == "MIN" else np.maximum).at(acc, ent[valid], x[valid])
        out[:] = list(acc)
    else:
        raise RfmError(f"aggregate {fn} is not supported in process")
    return out, nn > 0


def _reduce_text(
    fn: str, ent: np.ndarray, t: np.ndarray, taken: pa.ChunkedArray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    vals = np.asarray(pc.cast(taken, pa.string()).to_numpy(zero_copy_only=False), dtype=object)
    valid = np.array([v is not None for v in vals], dtype=bool)
    out = np.empty(n, dtype=object)
    ok = np.zeros(n, dtype=bool)
    e, tt, v = ent[valid], t[valid], vals[valid]
    if fn in ("FIRST", "LAST"):
        order = np.lexsort((tt if fn == "FIRST" else -tt, e))
        first = np.unique(e[order], return_index=True)
        out[first[0]] = v[order][first[1]]
        ok[first[0]] = True
        return out, ok
    if fn != "LIST_DISTINCT":
        raise RfmError(f"aggregate {fn} needs a numerical column")
    lists: dict[int, set[str]] = {}
    for i, x in zip(e.tolist(), v.tolist(), strict=True):
        lists.setdefault(i, set()).add(x)
    for i, s in lists.items():
        out[i] = sorted(s)
        ok[i] = True
    return out, ok
