"""Regroup a stream of CELLS record batches into :class:`TokenBatch` es of B anchors.

Anchor boundaries may cross record-batch boundaries; at most one batch of anchors (plus the
record batch being read) is held at a time, so memory does not grow with the stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_runtime.errors import RfmError
from rfm_runtime.schema import ANCHORS, CELLS
from rfm_runtime.tokenize import (
    AnchorKey,
    TokenBatch,
    TokenizerConfig,
    anchor_keys,
    time_us,
    tokenize_table,
)


@dataclass(frozen=True)
class TokenChunk:
    """B anchors and their tokens.

    Attributes:
        anchors: the anchors, schema ``ANCHORS``, in token-row order.
        tokens: their tokens, ``[B, S]`` arrays.
    """

    anchors: pa.Table
    tokens: TokenBatch


def iter_anchor_runs(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[AnchorKey, pa.Table]]:
    """Yield ``(anchor key, its cells)`` per anchor, joining anchors split across batches."""
    carry: list[pa.RecordBatch] = []
    carry_key: AnchorKey | None = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        ids = batch.column("entity_id")
        times = time_us(batch.column("anchor_time"))
        codes = np.asarray(pc.dictionary_encode(ids).indices.to_numpy(), np.int64)
        change = np.ones(len(codes), dtype=bool)
        change[1:] = (codes[1:] != codes[:-1]) | (times[1:] != times[:-1])
        starts = np.flatnonzero(change).tolist() + [batch.num_rows]
        for a, b in zip(starts[:-1], starts[1:], strict=True):
            key = (ids[a].as_py(), int(times[a]))
            if key != carry_key and carry:
                yield carry_key, pa.Table.from_batches(carry)  # type: ignore[misc]
                carry = []
            carry_key = key
            carry.append(batch.slice(a, b - a))
    if carry and carry_key is not None:
        yield carry_key, pa.Table.from_batches(carry)


def iter_token_batches(
    cells: Iterable[pa.RecordBatch],
    config: TokenizerConfig,
    anchors: Iterable[pa.RecordBatch] | None = None,
) -> Iterator[TokenChunk]:
    """Tokenize a stream of CELLS batches, B = ``config.batch_size`` anchors at a time.

    Args:
        cells: record batches in schema CELLS; the cells of one anchor are contiguous.
        config: tokenizer settings.
        anchors: optional ANCHORS batches listing every anchor to output, in the same order
            as they appear in ``cells``; anchors with no cells get only the anchor token.
            Without it the output has the anchors that have cells, in stream order.

    Yields:
        :class:`TokenChunk` s of up to B anchors.

    Raises:
        RfmError: when ``cells`` hold an anchor that ``anchors`` does not list in that order.
    """
    runs = iter_anchor_runs(cells)
    if anchors is None:
        group: list[tuple[AnchorKey, pa.Table]] = []
        for run in runs:
            group.append(run)
            if len(group) == config.batch_size:
                yield _chunk(group, [k for k, _ in group], config)
                group = []
        if group:
            yield _chunk(group, [k for k, _ in group], config)
        return
    pending = next(runs, None)
    for keys in _key_batches(anchors, config.batch_size):
        group = []
        for key in keys:
            if pending is not None and pending[0] == key:
                group.append(pending)
                pending = next(runs, None)
        yield _chunk(group, keys, config)
    if pending is not None:
        raise RfmError(
            f"cells for anchor {pending[0]!r} do not match the anchor list: the anchors must "
            "list every anchor that has cells, in the order of the cells"
        )


def _key_batches(anchors: Iterable[pa.RecordBatch], size: int) -> Iterator[list[AnchorKey]]:
    keys: list[AnchorKey] = []
    for batch in anchors:
        keys.extend(anchor_keys(batch))
        while len(keys) >= size:
            yield keys[:size]
            keys = keys[size:]
    if keys:
        yield keys


def _chunk(
    group: list[tuple[AnchorKey, pa.Table]], keys: list[AnchorKey], config: TokenizerConfig
) -> TokenChunk:
    tables = [t for _, t in group]
    table = pa.concat_tables(tables) if tables else CELLS.empty_table()
    tokens = tokenize_table(table, keys, config)
    anchors = pa.table(
        {
            "entity_id": pa.array([k[0] for k in keys], pa.string()),
            "anchor_time": pa.array([k[1] for k in keys], pa.int64()).cast(pa.timestamp("us")),
        },
        schema=ANCHORS,
    )
    return TokenChunk(anchors=anchors, tokens=tokens)
