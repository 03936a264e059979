"""Tokenizer: stable hashing, value encodings, node/parent ids, truncation, target removal."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from rfm_runtime.errors import RfmError
from rfm_runtime.hashing import hash_array, name_ids, stable_hashes, value_ids
from rfm_runtime.schema import CELLS
from rfm_runtime.tokenize import (
    COUNT_WINDOWS_DAYS,
    ROW_COUNT_WIDTH,
    STYPE_IDS,
    TokenizerConfig,
    tokenize,
)
from rfm_synthetic import T0, anchors_of, make_cells

CFG = TokenizerConfig(seq_len=64)


def test_hashes_match_blake2b_and_other_processes() -> None:
    words = ["BOEING", "dep_delay", "Ünïcode ✈", ""]
    expected = hashlib.blake2b(b"BOEING", digest_size=16, person=b"value").digest()
    assert stable_hashes("BOEING", "value", 2)[1] == int.from_bytes(expected[8:], "little")
    code = (
        "from rfm_runtime.hashing import hash_array; import pyarrow as pa, sys;"
        f"print(hash_array(pa.array({words!r}), 'value', 4096, 2).tolist())"
    )
    here = hash_array(pa.array(words), "value", 4096, 2).tolist()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == str(here)


def test_name_features_share_words_and_reserve_zero() -> None:
    dep, arr = name_ids("dep_delay", 1024, 4), name_ids("arrDelay", 1024, 4)
    assert dep[0] != arr[0]  # whole names differ
    assert dep[2] == arr[2]  # both have the word "delay"
    assert dep[3] == 0 and 0 not in dep[:3]
    assert all(1 <= v < 64 for v in value_ids("x", 64, 3))


def test_hash_array_nulls_are_zero_and_repeats_equal() -> None:
    out = hash_array(pa.array(["a", None, "a", "b"]), "value", 128, 2)
    assert out.shape == (4, 2)
    assert (out[1] == 0).all() and (out[0] == out[2]).all() and (out[0] != out[3]).any()


def _cells(rows: list[dict]) -> pa.Table:
    base = {"anchor_time": T0, "parent_table": None, "parent_key": None, "num_value": None}
    base |= {"text_value": None, "rel_days": None}
    return pa.Table.from_pylist([base | r for r in rows], schema=CELLS)


def _row(e: str, table: str, key: str, hop: int, col: str, stype: str, **kw: object) -> dict:
    return {
        "entity_id": e, "table_name": table, "row_key": key, "hop": hop,
        "column_name": col, "stype": stype, **kw,
    }  # fmt: skip


def test_value_encodings_and_null_flags() -> None:
    cells = _cells(
        [
            _row("e", "t", "e", 0, "n", "numerical", num_value=-99.0),
            _row("e", "t", "e", 0, "flag", "boolean", num_value=0.0),
            _row("e", "t", "e", 0, "gone", "numerical", num_value=float("nan")),
            _row("e", "t", "e", 0, "ts", "timestamp", num_value=-3.0, rel_days=-2.0),
            _row("e", "t", "e", 0, "cat", "categorical", text_value=None),
        ]
    )
    b = tokenize(cells, None, CFG)
    assert b.value_num[0, 1] == pytest.approx(-np.log1p(99.0), rel=1e-6)
    assert b.value_num[0, 2] == -1.0
    assert b.value_null[0, 1:6].tolist() == [0, 0, 1, 0, 1]
    assert b.value_num[0, 4] == pytest.approx(-np.log1p(3.0), rel=1e-6)
    assert b.rel_days[0, 4] == pytest.approx(-np.log1p(2.0), rel=1e-6)
    assert b.rel_null[0, 1:6].tolist() == [1, 1, 1, 0, 1]
    assert b.stype[0, :6].tolist() == [STYPE_IDS[s] for s in
        ("anchor", "numerical", "boolean", "numerical", "timestamp", "categorical")]  # fmt: skip
    assert b.value_ids[0, 5].tolist() == [0, 0]


def test_node_and_parent_ids_follow_the_subgraph() -> None:
    cells, _ = make_cells(6, seed=3)
    b = tokenize(cells, None, CFG)
    for a, (eid, _) in enumerate(anchors_of(cells)):
        part = cells.filter(pa.compute.equal(cells["entity_id"], eid)).to_pylist()
        part.sort(key=lambda r: r["hop"])  # stable: the tokenizer's order
        node_of: dict[tuple, int] = {}
        for pos, r in enumerate(part, start=1):
            node = int(b.node_index[a, pos])
            key = (r["table_name"], r["row_key"])
            assert node_of.setdefault(key, node) == node  # same row, same node
            assert (node == 0) == (r["hop"] == 0)
            parent = int(b.parent_index[a, pos])
            if r["hop"] == 0:
                assert parent == -1
            else:
                assert parent == node_of[(r["parent_table"], r["parent_key"])]
        assert len(set(node_of.values())) == len(node_of)  # different rows, different nodes
        assert (b.node_index[a, len(part) + 1 :] == -1).all()


def test_truncation_keeps_hop_zero_and_nearest_hops() -> None:
    cells, _ = make_cells(5, seed=4, max_orders=6)
    reversed_cells = cells.take(pa.array(np.arange(cells.num_rows)[::-1].copy()))
    cfg = TokenizerConfig(seq_len=8)
    b = tokenize(reversed_cells, anchors_of(cells)[::-1], cfg)
    for a in range(b.num_anchors):
        hops = b.hop[a][b.node_index[a] >= 0]
        assert (hops[1:5] == 0).all()  # the 4 customer cells survive, right after the anchor
        assert (np.diff(hops) >= 0).all()  # nearest hops first


def test_row_counts_count_children_before_truncation() -> None:
    cells, _ = make_cells(5, seed=4, max_orders=6)
    cfg = TokenizerConfig(seq_len=8)  # most children's cells are truncated away
    b = tokenize(cells, None, cfg)
    assert b.row_counts.shape == (5, 8, ROW_COUNT_WIDTH) and b.row_counts.dtype == np.float32
    for a, (eid, _) in enumerate(anchors_of(cells)):
        part = cells.filter(pa.compute.equal(cells["entity_id"], eid)).to_pylist()
        rows: dict[tuple, dict] = {}
        for r in part:  # a row reached twice counts under the parent of its first cell
            rows.setdefault((r["table_name"], r["row_key"]), r)
        expected: dict[tuple, list[int]] = {key: [0] * ROW_COUNT_WIDTH for key in rows}
        for r in rows.values():
            parent = (r["parent_table"], r["parent_key"])
            if parent in expected:
                expected[parent][0] += 1
                for j, days in enumerate(COUNT_WINDOWS_DAYS, start=1):
                    expected[parent][j] += r["rel_days"] is not None and r["rel_days"] >= -days
        part.sort(key=lambda r: r["hop"])
        entity = next(key for key, r in rows.items() if r["hop"] == 0)
        assert max(expected[entity]) > 0  # the case is not trivial
        np.testing.assert_allclose(b.row_counts[a, 0], np.log1p(expected[entity]), rtol=1e-6)
        for pos, r in enumerate(part[: cfg.seq_len - 1], start=1):
            got = b.row_counts[a, pos]
            want = np.log1p(expected[(r["table_name"], r["row_key"])])
            np.testing.assert_allclose(got, want, rtol=1e-6)
        assert (b.row_counts[a, len(part) + 1 :] == 0).all()


def test_target_column_removed_only_from_the_entity_row() -> None:
    cells = _cells(
        [
            _row("e", "users", "e", 0, "age", "numerical", num_value=30.0),
            _row("e", "users", "e", 0, "city", "categorical", text_value="x"),
            _row(
                "e",
                "users",
                "f",
                1,
                "age",
                "numerical",
                num_value=40.0,
                parent_table="users",
                parent_key="e",
            ),  # fmt: skip
        ]
    )
    b = tokenize(cells, None, TokenizerConfig(seq_len=8, target_column="age"))
    kept = b.value_num[0][b.node_index[0] >= 0]
    assert kept.tolist() == pytest.approx([0.0, 0.0, np.log1p(40.0)])
    assert b.hop[0, 1:3].tolist() == [0, 1]


def test_anchor_order_and_anchors_without_cells() -> None:
    cells, _ = make_cells(3, seed=5)
    keys = anchors_of(cells)
    ghost = ("nobody", dt.datetime(2024, 2, 1))
    b = tokenize(cells, [keys[2], ghost, keys[0], keys[1]], CFG)
    whole = tokenize(cells, None, CFG)
    assert (b.stype[0] == whole.stype[2]).all() and (b.value_num[3] == whole.value_num[1]).all()
    assert b.stype[1].tolist() == [STYPE_IDS["anchor"]] + [0] * (CFG.seq_len - 1)
    assert (b.table_name_ids[1] == 0).all()
    assert (whole.table_name_ids[:, 0] == whole.table_name_ids[:, 1]).all()  # entity table
    with pytest.raises(RfmError, match="not among"):
        tokenize(cells, [keys[0]], CFG)


def test_bad_input_is_an_rfm_error() -> None:
    cells, _ = make_cells(2, seed=6)
    split = cells.num_rows // 4
    shuffled = pa.concat_tables([cells.slice(split), cells.slice(0, split)])
    with pytest.raises(RfmError, match="contiguous"):
        tokenize(shuffled, None, CFG)
    bad = _cells([_row("e", "t", "e", 0, "k", "key", text_value="1")])
    with pytest.raises(RfmError, match="stype 'key'"):
        tokenize(bad, None, CFG)
    with pytest.raises(RfmError, match="did you mean 'seq_len'"):
        TokenizerConfig.from_dict({"seq_length": 10})


def test_tokenize_is_deterministic() -> None:
    cells, _ = make_cells(4, seed=7)
    one, two = tokenize(cells, None, CFG), tokenize(cells, None, CFG)
    for name, arr in one.feeds().items():
        assert arr.dtype == two.feeds()[name].dtype
        np.testing.assert_array_equal(arr, two.feeds()[name])
    assert one.input_dtypes() == {k: str(v.dtype) for k, v in one.feeds().items()}


def test_types_are_normalised_and_missing_columns_named() -> None:
    cells, _ = make_cells(3, seed=9)
    wide = cells.set_column(
        cells.schema.get_field_index("hop"), "hop", cells["hop"].cast(pa.int64())
    ).set_column(cells.schema.get_field_index("num_value"), "num_value",
                 cells["num_value"].cast(pa.decimal128(18, 3)))  # fmt: skip
    a, b = tokenize(wide, None, CFG), tokenize(cells, None, CFG)
    np.testing.assert_allclose(a.value_num, b.value_num, atol=1e-3)
    np.testing.assert_array_equal(a.hop, b.hop)
    with pytest.raises(RfmError, match="lack column.*rel_days"):
        tokenize(cells.drop_columns(["rel_days"]), None, CFG)
