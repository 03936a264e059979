"""The vectorised core of the tokenizer: scatter cells into padded ``[B, S]`` token arrays."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_runtime.errors import RfmError
from rfm_runtime.hashing import hash_array
from rfm_runtime.tokenize import (
    COUNT_WINDOWS_DAYS,
    STYPE_IDS,
    TokenBatch,
    TokenizerConfig,
    signed_log1p,
    time_us,
)
from rfm_runtime.value_features import FOURIER_WIDTH, calendar, fourier

_SEP = "\x1f"


def fill_tokens(
    batch: TokenBatch, table: pa.Table, row: np.ndarray, config: TokenizerConfig
) -> None:
    """Write the tokens of ``table``'s cells into ``batch`` (in place), positions 1..S-1.

    Args:
        batch: padded arrays for B anchors, written in place.
        table: N cells, schema CELLS, anchors contiguous.
        row: ``int64[N]`` output row (anchor) of every cell.
        config: the tokenizer settings.

    Raises:
        RfmError: on a stype the tokenizer does not know.
    """
    hop = _np(table.column("hop"), np.int64)
    keep = np.ones(len(row), dtype=bool)
    if config.hidden_columns:
        hidden = pa.array(config.hidden_columns, pa.string())
        is_target = _np(pc.is_in(table.column("column_name"), value_set=hidden), bool)
        keep &= ~(is_target & (hop == 0))
    # group by anchor, then hop (stable: arrival order within a hop), then truncate to S - 1.
    order = np.lexsort((hop, row))
    _anchor_table_names(batch, table, row[order], order, hop[order], config)
    node_code, parent_code, width = _row_codes(table)
    rel = _np(table.column("rel_days").fill_null(np.nan), np.float64)
    counts = _row_counts(row, node_code, parent_code, width, rel)
    entity_cell = order[hop[order] == 0]  # the anchor token gets the entity row's counts
    batch.row_counts[row[entity_cell], 0] = counts[entity_cell]
    order = order[keep[order]]
    r = row[order]
    first = np.r_[0, np.flatnonzero(np.diff(r)) + 1] if len(r) else np.zeros(0, np.int64)
    pos = np.arange(len(r)) - np.repeat(first, np.diff(np.r_[first, len(r)])) + 1
    inside = pos < config.seq_len
    order, r, pos = order[inside], r[inside], pos[inside]
    if not len(order):
        return
    cells = table.take(pa.array(order))
    h = hop[order]

    stype_names = cells.column("stype").combine_chunks()
    stype = _stype_ids(stype_names)
    batch.stype[r, pos] = stype
    batch.hop[r, pos] = h

    node, parent = _node_ids(node_code[order], parent_code[order], width, r, h)
    batch.node_index[r, pos] = node
    batch.row_counts[r, pos] = counts[order]
    batch.parent_index[r, pos] = parent
    col_key = pc.binary_join_element_wise(
        cells.column("table_name"), cells.column("column_name"), _SEP
    )
    batch.column_index[r, pos] = _local_ids(r, _codes(col_key)) + 1

    batch.table_name_ids[r, pos] = hash_array(
        cells.column("table_name"), "name", config.name_buckets, config.name_slots
    )
    batch.column_name_ids[r, pos] = hash_array(
        cells.column("column_name"), "name", config.name_buckets, config.name_slots
    )

    is_text = (stype == STYPE_IDS["categorical"]) | (stype == STYPE_IDS["text"])
    texts = cells.column("text_value")
    vids = hash_array(texts, "value", config.value_buckets, config.value_hashes)
    vids[~is_text] = 0
    batch.value_ids[r, pos] = vids
    text_null = _np(pc.is_null(texts), bool)

    num = _np(cells.column("num_value").fill_null(np.nan), np.float64)
    num_null = ~np.isfinite(num)
    num = np.where(num_null, 0.0, num)
    is_bool = stype == STYPE_IDS["boolean"]
    enc = np.where(is_bool, 2.0 * (num > 0.5) - 1.0, signed_log1p(num))
    enc = np.where(is_text | num_null, 0.0, enc)
    batch.value_num[r, pos] = enc
    batch.value_null[r, pos] = np.where(is_text, text_null, num_null)
    _fill_aux(batch, cells, r, pos, stype, num, num_null)

    rel = rel[order]
    rel_null = ~np.isfinite(rel)
    batch.rel_days[r, pos] = np.where(rel_null, 0.0, signed_log1p(np.where(rel_null, 0.0, rel)))
    batch.rel_null[r, pos] = rel_null


def _fill_aux(
    batch: TokenBatch,
    cells: pa.Table,
    r: np.ndarray,
    pos: np.ndarray,
    stype: np.ndarray,
    num: np.ndarray,
    num_null: np.ndarray,
) -> None:
    """Fourier features of numbers; calendar features of timestamps (anchor time + days)."""
    is_num = (stype == STYPE_IDS["numerical"]) & ~num_null
    if is_num.any():
        batch.value_aux[r[is_num], pos[is_num], :FOURIER_WIDTH] = fourier(num[is_num])
    is_ts = (stype == STYPE_IDS["timestamp"]) & ~num_null
    if is_ts.any():
        anchor_us = time_us(cells.column("anchor_time"))[is_ts]
        at = anchor_us + num[is_ts] * 86_400_000_000
        batch.value_aux[r[is_ts], pos[is_ts], FOURIER_WIDTH:] = calendar(at)


def _anchor_table_names(
    batch: TokenBatch,
    table: pa.Table,
    r: np.ndarray,
    order: np.ndarray,
    hop: np.ndarray,
    config: TokenizerConfig,
) -> None:
    """Give each anchor token the entity table's name, from the anchor's first hop-0 cell."""
    first = _starts(r)
    first = first[hop[first] == 0]
    names = table.column("table_name").take(pa.array(order[first]))
    ids = hash_array(names, "name", config.name_buckets, config.name_slots)
    batch.table_name_ids[r[first], 0] = ids


def _np(col: pa.Array | pa.ChunkedArray, dtype: type) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=dtype)


def _codes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Dense int64 codes of strings (equal strings, equal codes); nulls get -1."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    idx = pc.dictionary_encode(values).indices.fill_null(-1)
    return np.asarray(idx.to_numpy(zero_copy_only=False), np.int64)


def _starts(group: np.ndarray) -> np.ndarray:
    return np.r_[0, np.flatnonzero(np.diff(group)) + 1]


def _local_ids(group: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Rank of each code's first appearance within its group (``group`` sorted, codes >= 0).

    Example: groups ``[0,0,0,1,1]``, codes ``[5,2,5,2,7]`` -> ``[0,1,0,0,1]``.
    """
    if not len(codes):
        return np.zeros(0, np.int64)
    width = int(codes.max()) + 1
    key = group.astype(np.int64) * width + codes
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    g = uniq[order] // width
    starts = _starts(g)
    rank_sorted = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = np.empty(len(order), np.int64)
    rank[order] = rank_sorted
    return rank[inv.reshape(-1)]


def _row_codes(table: pa.Table) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes of every cell's row ``(table_name, row_key)`` and of its parent row (-1 none);
    equal rows get equal codes, whichever column they come from. Also a width above every
    code, so that ``anchor * width + code`` keys a row within its anchor."""
    n = table.num_rows
    node_key = pc.binary_join_element_wise(
        table.column("table_name"), table.column("row_key"), _SEP
    )
    parent_key = pc.binary_join_element_wise(
        table.column("parent_table"), table.column("parent_key"), _SEP
    )
    both = _codes(pa.chunked_array(node_key.chunks + parent_key.chunks).combine_chunks())
    return both[:n], both[n:], int(both.max()) + 2


def _row_counts(
    row: np.ndarray, node_code: np.ndarray, parent_code: np.ndarray, width: int, rel: np.ndarray
) -> np.ndarray:
    """``row_counts`` of every cell: ``log1p`` of its row's children within the anchor, in all
    and per :data:`COUNT_WINDOWS_DAYS` (children with ``rel_days >= -window``)."""
    node_key = row * width + node_code
    rows, first = np.unique(node_key, return_index=True)  # one entry per (anchor, row)
    par = parent_code[first]
    has = par >= 0
    ask = row[first][has] * width + par[has]
    at = np.clip(np.searchsorted(rows, ask), 0, len(rows) - 1)
    found = rows[at] == ask
    child_rel = rel[first][has]
    cols = [np.bincount(at[found], minlength=len(rows))]
    for days in COUNT_WINDOWS_DAYS:
        recent = found & (child_rel >= -days)  # NaN (static rows) is never recent
        cols.append(np.bincount(at[recent], minlength=len(rows)))
    per_row = np.log1p(np.stack(cols, axis=1)).astype(np.float32)
    return per_row[np.searchsorted(rows, node_key)]


def _node_ids(
    node_code: np.ndarray, parent_code: np.ndarray, width: int, r: np.ndarray, hop: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Node index of every cell's row (0 = entity row) and of its parent row (-1 = none)."""
    n = len(r)
    node = np.zeros(n, np.int64)
    deeper = hop > 0
    node[deeper] = _local_ids(r[deeper], node_code[deeper]) + 1
    known = r * width + node_code
    uniq, first = np.unique(known, return_index=True)
    ask = r * width + parent_code
    at = np.clip(np.searchsorted(uniq, ask), 0, len(uniq) - 1)
    found = (uniq[at] == ask) & (parent_code >= 0)
    parent = np.where(found, node[first[at]], -1)
    return node, parent


def _stype_ids(names: pa.Array) -> np.ndarray:
    encoded = pc.dictionary_encode(names)
    known = []
    for s in encoded.dictionary.to_pylist():
        if s not in STYPE_IDS or s == "anchor":
            choices = [k for k in STYPE_IDS if k != "anchor"]
            raise RfmError(f"cells have stype '{s}'; the tokenizer knows {', '.join(choices)}")
        known.append(STYPE_IDS[s])
    return np.asarray(known, np.int64)[encoded.indices.to_numpy(zero_copy_only=False)]
