"""The in-process sampler's index: row keys, row times and a CSR adjacency per link.

Built once per (GraphSpec, tables) and reused by every :func:`dbt_rfm.sampling.sample` call,
so training loops that sample many anchor batches pay for it once.

Every table of the graph gets a table id (its place in ``GraphSpec.tables``, which is sorted by
name, so comparing ids compares names) and a global row offset, so a row anywhere in the graph
is one ``int64`` (``offset[table] + row``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dbt_rfm.errors import RfmError, did_you_mean
from dbt_rfm.sampling.keys import key_text, timestamp_us
from dbt_rfm.spec import GraphSpec, LinkSpec, TableSpec

__all__ = ["GraphIndex", "LinkIndex", "TableIndex"]


@dataclass(frozen=True)
class TableIndex:
    """Keys and times of one table.

    Attributes:
        spec: the table's spec.
        data: the Arrow table (N rows), for the cells' values.
        keys: ``string[N]`` row keys.
        key_rank: ``int64[N]`` rank of each key in byte order (SQL ``order by row_key``).
        time_us: ``int64[N]`` row time in microseconds, or None for a static table.
        visible_ever: ``bool[N]``: the row time is not null (null times are never visible).
    """

    spec: TableSpec
    data: pa.Table
    keys: pa.Array
    key_rank: np.ndarray
    time_us: np.ndarray | None
    visible_ever: np.ndarray

    @property
    def n_rows(self) -> int:
        """Number of rows N."""
        return len(self.keys)

    def rows_of(self, keys: pa.Array) -> np.ndarray:
        """``int64[M]`` row index of each key in ``keys`` (``string[M]``), -1 where absent."""
        found = pc.index_in(keys, value_set=self.keys)
        return np.asarray(found.fill_null(-1), dtype=np.int64)

    def visible(self, rows: np.ndarray, anchor_us: np.ndarray) -> np.ndarray:
        """``bool[M]``: row ``rows[i]`` is visible at ``anchor_us[i]`` (static, or time <= it)."""
        if self.time_us is None:
            return np.ones(len(rows), dtype=bool)
        return self.visible_ever[rows] & (self.time_us[rows] <= anchor_us)


@dataclass(frozen=True)
class LinkIndex:
    """One link ``child(fk) -> parent(pk)`` as arrays.

    Attributes:
        spec: the link.
        child: child table id; parent: parent table id.
        parent_of: ``int64[N_child]`` parent row of each child row, -1 for a null or dangling key.
        indptr: ``int64[N_parent + 1]`` CSR offsets into ``children``.
        children: ``int64[E]`` child rows grouped by parent, newest first, ties by row key
            ascending; children with a null time are left out (never visible).
        search_key: ``int64[E]`` ``parent * (R + 1) + rank(-time)``, non-decreasing, so one
            ``searchsorted`` finds the first child visible at an anchor time; None when the
            child table is static.
        neg_times: ``int64[R]`` sorted distinct negated child times (the ranks' values).
    """

    spec: LinkSpec
    child: int
    parent: int
    parent_of: np.ndarray
    indptr: np.ndarray
    children: np.ndarray
    search_key: np.ndarray | None
    neg_times: np.ndarray | None

    def first_visible(self, parent_rows: np.ndarray, anchor_us: np.ndarray) -> np.ndarray:
        """``int64[M]`` position in ``children`` of the newest child visible at each anchor."""
        if self.search_key is None or self.neg_times is None:
            return self.indptr[parent_rows]
        q = np.searchsorted(self.neg_times, -anchor_us, side="left")
        probe = parent_rows * (len(self.neg_times) + 1) + q
        return np.searchsorted(self.search_key, probe, side="left").astype(np.int64)


@dataclass(frozen=True)
class GraphIndex:
    """Everything the in-process sampler needs, built once.

    Attributes:
        spec: the graph.
        tables: one :class:`TableIndex` per ``spec.tables`` entry (same order).
        links: one :class:`LinkIndex` per ``spec.links`` entry (same order).
        offsets: ``int64[T + 1]`` global row offset of each table.
        global_key_rank: ``int64[sum N]`` key ranks of all tables, at their offsets.
    """

    spec: GraphSpec
    tables: tuple[TableIndex, ...]
    links: tuple[LinkIndex, ...]
    offsets: np.ndarray
    global_key_rank: np.ndarray

    @classmethod
    def build(cls, spec: GraphSpec, tables: Mapping[str, pa.Table]) -> GraphIndex:
        """Index ``tables`` (one Arrow table per graph table, by dbt model name)."""
        names = [t.name for t in spec.tables]
        for name in tables:
            if name not in names:
                raise RfmError(
                    f"Arrow table '{name}' is not in the rfm graph{did_you_mean(name, names)}; "
                    f"graph models: {', '.join(names)}"
                )
        tidx = tuple(_table_index(t, _require(tables, t.name, names)) for t in spec.tables)
        tid = {t.name: i for i, t in enumerate(spec.tables)}
        lidx = tuple(_link_index(lk, tid, tidx) for lk in spec.links)
        offsets = np.concatenate([[0], np.cumsum([t.n_rows for t in tidx])]).astype(np.int64)
        grank = np.concatenate([t.key_rank for t in tidx]) if tidx else np.zeros(0, dtype=np.int64)
        return cls(spec=spec, tables=tidx, links=lidx, offsets=offsets, global_key_rank=grank)

    def table_id(self, name: str) -> int:
        """Table id of ``name`` (RfmError suggesting the closest name when unknown)."""
        for i, t in enumerate(self.spec.tables):
            if t.name == name:
                return i
        self.spec.table(name)  # raises with a suggestion
        raise AssertionError("unreachable")  # pragma: no cover


def _require(tables: Mapping[str, pa.Table], name: str, names: list[str]) -> pa.Table:
    if name not in tables:
        raise RfmError(
            f"no Arrow table for model '{name}' of the rfm graph; got {sorted(tables)}, "
            f"need {names}"
        )
    return tables[name]


def _table_index(spec: TableSpec, data: pa.Table) -> TableIndex:
    keys = key_text(data, spec.primary_key, spec.name)
    if keys.null_count or pc.count_distinct(keys).as_py() != len(keys):
        raise RfmError(
            f"model '{spec.name}': primary key ({', '.join(spec.primary_key)}) has nulls or "
            "duplicates; the sampler needs a unique, not-null key"
        )
    order = np.asarray(pc.sort_indices(keys), dtype=np.int64)
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys), dtype=np.int64)
    if spec.time_column is None:
        return TableIndex(spec, data, keys, rank, None, np.ones(len(keys), dtype=bool))
    times = timestamp_us(
        data[spec.time_column], f"model '{spec.name}', column '{spec.time_column}'"
    )
    valid = np.asarray(pc.is_valid(times), dtype=bool)
    time_us = np.asarray(times.fill_null(0), dtype=np.int64)
    return TableIndex(spec, data, keys, rank, time_us, valid)


def _link_index(
    link: LinkSpec, tid: Mapping[str, int], tables: tuple[TableIndex, ...]
) -> LinkIndex:
    c, p = tid[link.child], tid[link.parent]
    child, parent = tables[c], tables[p]
    fk = key_text(child.data, link.child_columns, link.child)
    parent_of = parent.rows_of(fk)
    keep = parent_of >= 0
    keep &= child.visible_ever
    rows = np.nonzero(keep)[0].astype(np.int64)
    par = parent_of[rows]
    if child.time_us is None:
        order = np.lexsort((child.key_rank[rows], par))
        rows, par = rows[order], par[order]
        search_key, neg_times = None, None
    else:
        neg = -child.time_us[rows]
        order = np.lexsort((child.key_rank[rows], neg, par))
        rows, par, neg = rows[order], par[order], neg[order]
        neg_times = np.unique(neg)
        rank = np.searchsorted(neg_times, neg)
        search_key = par * (len(neg_times) + 1) + rank
    counts = np.bincount(par, minlength=parent.n_rows)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return LinkIndex(link, c, p, parent_of, indptr, rows, search_key, neg_times)
