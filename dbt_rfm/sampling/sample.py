"""In-process temporal subgraph sampling, vectorised over anchors (numpy on a GraphIndex).

Implements exactly the algorithm of ``docs/sampling.md`` (the same as the SQL macro
``dbt_rfm.sample_subgraph``): hop 0 is the entity row; hop h expands every node of hop h-1
along every link in both directions, keeping only rows visible at the anchor time, at most
``fanouts[h-1]`` children per (anchor, frontier node, link) newest first (ties: row key
ascending); nodes seen at an earlier hop are dropped and duplicates within a hop keep the
smallest ``(parent_table, parent_key)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from rfm_runtime.schema import SUBGRAPH

from dbt_rfm.errors import RfmError
from dbt_rfm.sampling.index import GraphIndex
from dbt_rfm.sampling.keys import timestamp_us
from dbt_rfm.spec import GraphSpec

__all__ = ["DEFAULT_FANOUTS", "DEFAULT_HOPS", "Frontier", "check_caps", "sample"]

DEFAULT_HOPS = 2
DEFAULT_FANOUTS = (16, 4)


@dataclass(frozen=True)
class Frontier:
    """Nodes of one hop for all anchors, as parallel arrays of length M.

    Attributes:
        anchor: ``int64[M]`` anchor index (row of the deduplicated anchors table).
        table: ``int64[M]`` table id; row: ``int64[M]`` row within that table.
        parent_table: ``int64[M]`` table id of the node it was reached from (-1 at hop 0).
        parent_row: ``int64[M]`` row of that node (-1 at hop 0).
    """

    anchor: np.ndarray
    table: np.ndarray
    row: np.ndarray
    parent_table: np.ndarray
    parent_row: np.ndarray


def check_caps(hops: int, fanouts: Sequence[int]) -> tuple[int, tuple[int, ...]]:
    """Validate ``hops`` and ``fanouts`` (one cap per hop, each >= 0); return them normalised."""
    if not isinstance(hops, int) or hops < 0:
        raise RfmError(f"dbt_rfm:hops must be a non-negative integer, found {hops!r}")
    caps = tuple(fanouts)
    if len(caps) != hops:
        raise RfmError(
            f"dbt_rfm:fanouts must have one cap per hop ({hops} hops), found {list(caps)}"
        )
    for cap in caps:
        if not isinstance(cap, int) or cap < 0:
            raise RfmError(f"dbt_rfm:fanouts must hold non-negative integers, found {list(caps)}")
    return hops, caps


def sample(
    spec: GraphSpec | GraphIndex,
    tables: Mapping[str, pa.Table] | None,
    anchors: pa.Table,
    hops: int = DEFAULT_HOPS,
    fanouts: Sequence[int] = DEFAULT_FANOUTS,
    entity: str | None = None,
) -> pa.Table:
    """Sample the temporal subgraph of every anchor.

    Args:
        spec: the graph, or a prebuilt :class:`GraphIndex` (then ``tables`` may be None).
        tables: one Arrow table per graph table, by dbt model name.
        anchors: columns ``entity_table`` (string), ``entity_id`` (string), ``anchor_time``
            (timestamp); ``entity_table`` may be left out when ``entity`` is given.
            Duplicate anchors are sampled once.
        hops: number of hops k.
        fanouts: child cap per hop, length k.
        entity: the entity table for anchors without an ``entity_table`` column.

    Returns:
        A table of schema :data:`rfm_runtime.schema.SUBGRAPH`, sorted by
        ``entity_id, anchor_time, hop, table_name, row_key``.
    """
    hops, caps = check_caps(hops, fanouts)
    index = spec if isinstance(spec, GraphIndex) else GraphIndex.build(spec, tables or {})
    anchors = _distinct_anchors(anchors, entity)
    anchor_us = np.asarray(timestamp_us(anchors["anchor_time"], "anchors.anchor_time"))
    ent_tables = anchors["entity_table"].to_pylist()
    ent_ids = anchors["entity_id"].combine_chunks()
    n = len(ent_tables)

    # hop 0: the entity rows (emitted even when the key is absent; only found rows expand)
    ent_tid = np.array([index.table_id(t) for t in ent_tables], dtype=np.int64)
    ent_row = np.full(n, -1, dtype=np.int64)
    for t in np.unique(ent_tid):
        m = np.nonzero(ent_tid == t)[0]
        ent_row[m] = index.tables[t].rows_of(ent_ids.take(pa.array(m)))
    found = ent_row >= 0
    none = np.full(int(found.sum()), -1, dtype=np.int64)
    frontier = Frontier(np.nonzero(found)[0], ent_tid[found], ent_row[found], none, none)
    n_total = int(index.offsets[-1])
    seen = np.sort(_codes(index, frontier, n_total))
    hop_frontiers = [frontier]
    for h in range(1, hops + 1):
        cand = _expand(index, frontier, anchor_us, caps[h - 1])
        frontier = _dedup(index, cand, seen, n_total)
        seen = np.union1d(seen, _codes(index, frontier, n_total))
        hop_frontiers.append(frontier)
    return _to_arrow(index, anchors, ent_tid, hop_frontiers)


def _distinct_anchors(anchors: pa.Table, entity: str | None) -> pa.Table:
    for col in ("entity_id", "anchor_time"):
        if col not in anchors.column_names:
            raise RfmError(f"anchors need a column '{col}'; found {anchors.column_names}")
    if "entity_table" not in anchors.column_names:
        if entity is None:
            raise RfmError("anchors need a column 'entity_table', or pass entity='<dbt model>'")
        anchors = anchors.append_column(
            "entity_table", pa.array([entity] * anchors.num_rows, pa.string())
        )
    t = pa.table(
        {
            "entity_table": anchors["entity_table"].cast(pa.string()),
            "entity_id": anchors["entity_id"].cast(pa.string()),
            "anchor_time": anchors["anchor_time"].cast(pa.timestamp("us")),
        }
    )
    return t.group_by(["entity_table", "entity_id", "anchor_time"], use_threads=False).aggregate([])


def _codes(index: GraphIndex, f: Frontier, n_total: int) -> np.ndarray:
    """``int64[M]`` one code per (anchor, node): ``anchor * n_total + global row``."""
    return f.anchor * n_total + index.offsets[f.table] + f.row


def _expand(index: GraphIndex, f: Frontier, anchor_us: np.ndarray, cap: int) -> Frontier:
    parts: list[Frontier] = []
    for link in index.links:
        parent_t = index.tables[link.parent]
        # parent direction: frontier rows of the child table -> their parent row
        m = f.table == link.child
        a, r = f.anchor[m], f.row[m]
        p = link.parent_of[r]
        ok = p >= 0
        ok[ok] = parent_t.visible(p[ok], anchor_us[a[ok]])
        k = int(ok.sum())
        parts.append(Frontier(a[ok], np.full(k, link.parent), p[ok], np.full(k, link.child), r[ok]))
        # child direction: frontier rows of the parent table -> newest visible children
        m = f.table == link.parent
        a, r = f.anchor[m], f.row[m]
        start = link.first_visible(r, anchor_us[a])
        count = np.clip(link.indptr[r + 1] - start, 0, cap)
        src = np.repeat(np.arange(len(a)), count)
        within = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        kids = link.children[start[src] + within]
        # children are newest first, so every child from `start` on is visible
        k = len(kids)
        parts.append(
            Frontier(a[src], np.full(k, link.child), kids, np.full(k, link.parent), r[src])
        )
    if not parts:
        e = np.zeros(0, dtype=np.int64)
        return Frontier(e, e, e, e, e)
    return Frontier(
        *(
            np.concatenate([getattr(p, n) for p in parts]).astype(np.int64)
            for n in ("anchor", "table", "row", "parent_table", "parent_row")
        )
    )


def _dedup(index: GraphIndex, c: Frontier, seen: np.ndarray, n_total: int) -> Frontier:
    code = _codes(index, c, n_total)
    new = ~np.isin(code, seen, assume_unique=False)
    code = code[new]
    c = Frontier(
        *(getattr(c, n)[new] for n in ("anchor", "table", "row", "parent_table", "parent_row"))
    )
    prank = index.global_key_rank[index.offsets[c.parent_table] + c.parent_row]
    order = np.lexsort((prank, c.parent_table, code))
    code = code[order]
    first = np.ones(len(code), dtype=bool)
    first[1:] = code[1:] != code[:-1]
    keep = order[first]
    return Frontier(
        *(getattr(c, n)[keep] for n in ("anchor", "table", "row", "parent_table", "parent_row"))
    )


def _to_arrow(
    index: GraphIndex, anchors: pa.Table, ent_tid: np.ndarray, hops: list[Frontier]
) -> pa.Table:
    names = pa.array([t.name for t in index.spec.tables], pa.string())
    all_keys = (
        pa.concat_arrays([t.keys for t in index.tables])
        if index.tables
        else pa.array([], pa.string())
    )
    n = anchors.num_rows
    cols: dict[str, list[pa.Array]] = {f.name: [] for f in SUBGRAPH}
    # hop 0 from the anchors themselves (the entity row, found or not)
    cols["entity_id"].append(anchors["entity_id"].combine_chunks())
    cols["anchor_time"].append(anchors["anchor_time"].combine_chunks())
    cols["table_name"].append(names.take(pa.array(ent_tid)))
    cols["row_key"].append(anchors["entity_id"].combine_chunks())
    cols["hop"].append(pa.array(np.zeros(n, dtype=np.int32)))
    cols["parent_table"].append(pa.nulls(n, pa.string()))
    cols["parent_key"].append(pa.nulls(n, pa.string()))
    for h, f in enumerate(hops[1:], start=1):
        a = pa.array(f.anchor)
        cols["entity_id"].append(anchors["entity_id"].combine_chunks().take(a))
        cols["anchor_time"].append(anchors["anchor_time"].combine_chunks().take(a))
        cols["table_name"].append(names.take(pa.array(f.table)))
        cols["row_key"].append(all_keys.take(pa.array(index.offsets[f.table] + f.row)))
        cols["hop"].append(pa.array(np.full(len(f.anchor), h, dtype=np.int32)))
        cols["parent_table"].append(names.take(pa.array(f.parent_table)))
        cols["parent_key"].append(
            all_keys.take(pa.array(index.offsets[f.parent_table] + f.parent_row))
        )
    out = pa.Table.from_arrays(
        [pa.chunked_array(cols[f.name], f.type) for f in SUBGRAPH], schema=SUBGRAPH
    )
    return out.sort_by(
        [(c, "ascending") for c in ("entity_id", "anchor_time", "hop", "table_name", "row_key")]
    ).combine_chunks()
