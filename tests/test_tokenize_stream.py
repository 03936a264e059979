"""Regrouping a CELLS stream into TokenBatches: batch boundaries never change the tokens."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rfm_runtime.errors import RfmError
from rfm_runtime.schema import ANCHORS
from rfm_runtime.token_stream import iter_token_batches
from rfm_runtime.tokenize import TokenBatch, TokenizerConfig, tokenize
from rfm_synthetic import anchors_of, make_cells

CELLS_, _ = make_cells(11, seed=8)
WHOLE = tokenize(CELLS_, None, TokenizerConfig(seq_len=48))


def _split(table: pa.Table, cuts: list[int]) -> list[pa.RecordBatch]:
    edges = [0, *sorted(set(cuts)), table.num_rows]
    return [
        table.slice(a, b - a).combine_chunks().to_batches()[0]
        for a, b in zip(edges, edges[1:], strict=False)
        if b > a
    ]


def _assert_same(a: TokenBatch, b: TokenBatch) -> None:
    for name, arr in a.feeds().items():
        np.testing.assert_array_equal(arr, b.feeds()[name], err_msg=name)


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(1, CELLS_.num_rows - 1), max_size=12),
    batch_size=st.integers(2, 5),
)
def test_any_batch_boundaries_give_the_same_tokens(cuts: list[int], batch_size: int) -> None:
    cfg = TokenizerConfig(seq_len=48, batch_size=batch_size)
    chunks = list(iter_token_batches(iter(_split(CELLS_, cuts)), cfg))
    assert [c.tokens.num_anchors for c in chunks[:-1]] == [batch_size] * (len(chunks) - 1)
    _assert_same(TokenBatch.concat([c.tokens for c in chunks]), WHOLE)
    keys = [
        k
        for c in chunks
        for k in zip(
            c.anchors["entity_id"].to_pylist(), c.anchors["anchor_time"].to_pylist(), strict=True
        )
    ]
    assert keys == anchors_of(CELLS_)


def _anchor_batches(keys: list[tuple[str, dt.datetime]]) -> list[pa.RecordBatch]:
    table = pa.table(
        {
            "entity_id": [k[0] for k in keys],
            "anchor_time": pa.array([k[1] for k in keys], pa.timestamp("us")),
        },
        schema=ANCHORS,
    )
    return table.to_batches(max_chunksize=3)


def test_anchor_list_adds_anchors_without_cells() -> None:
    keys = anchors_of(CELLS_)
    ghost = [("ghost", dt.datetime(2024, 3, 1)), ("ghost2", dt.datetime(2024, 3, 1))]
    listed = [ghost[0], *keys[:5], ghost[1], *keys[5:]]
    cfg = TokenizerConfig(seq_len=48, batch_size=4)
    chunks = list(
        iter_token_batches(iter(_split(CELLS_, [7, 50])), cfg, anchors=_anchor_batches(listed))
    )
    got = TokenBatch.concat([c.tokens for c in chunks])
    assert got.num_anchors == len(listed)
    real = [i for i, k in enumerate(listed) if k not in ghost]
    _assert_same(got.take(np.array(real)), WHOLE)
    for i in (0, 6):
        assert (got.node_index[i] >= 0).sum() == 1  # the anchor token only


def test_anchor_list_in_another_order_is_an_error() -> None:
    keys = anchors_of(CELLS_)
    cfg = TokenizerConfig(seq_len=48, batch_size=4)
    with pytest.raises(RfmError, match="do not match the anchor list"):
        list(iter_token_batches(CELLS_.to_batches(), cfg, anchors=_anchor_batches(keys[::-1])))


def test_stream_is_consumed_lazily() -> None:
    pulled = []

    def batches():  # one anchor's worth of cells at a time
        for i, (eid, _) in enumerate(anchors_of(CELLS_)):
            pulled.append(i)
            yield CELLS_.filter(pa.compute.equal(CELLS_["entity_id"], eid)).to_batches()[0]

    it = iter_token_batches(batches(), TokenizerConfig(seq_len=48, batch_size=2))
    first = next(it)
    assert first.tokens.num_anchors == 2
    assert len(pulled) == 3  # two anchors plus the start of the third, not the whole stream
