"""rfm_predictions over DuckDB: targets sharing anchors encode them once, with the same scores."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("torch")

from rfm_runtime.schema import SIBLING_HISTORY, TARGET_HISTORY  # noqa: E402
from rfm_synthetic import T0, anchors_of, export_small, make_cells  # noqa: E402

from dbt_rfm import scoring  # noqa: E402
from dbt_rfm.scoring import ScoringInputs, predictions  # noqa: E402

N_CTX, N_QUERY = 40, 12
NAMES = (
    "rfm_targets",
    "rfm_anchors",
    "rfm_labels",
    "rfm_cells",
    "rfm_item_history",
    "rfm_target_history",
    "rfm_sibling_history",
)
READ_CELLS = scoring._Reads.cells


def _anchor_table(target: str, keys: list, role: str) -> pa.Table:
    return pa.table(
        {
            "target_name": [target] * len(keys),
            "entity_id": [k[0] for k in keys],
            "anchor_time": pa.array([k[1] for k in keys], pa.timestamp("us")),
            "role": [role] * len(keys),
        }
    )


def _warehouse(path, targets: list[tuple[str, str]], siblings: bool = False) -> None:
    """Every target shares the same context and query anchors (and so their cells). With
    ``siblings``, binary labels follow a sibling history: every third anchor's siblings were
    mostly positive, and so is its label."""
    cells, labels = make_cells(N_CTX + N_QUERY, seed=8)
    keys = anchors_of(cells)
    query_ids = {k[0] for k in keys[N_CTX:]}
    late = pa.array(
        [
            T0 + dt.timedelta(days=30) if e in query_ids else T0
            for e in cells["entity_id"].to_pylist()
        ],
        pa.timestamp("us"),
    )
    cells = cells.set_column(cells.schema.get_field_index("anchor_time"), "anchor_time", late)
    keys = anchors_of(cells)
    ctx_keys, q_keys = keys[:N_CTX], keys[N_CTX:]
    anchors = pa.concat_tables(
        [_anchor_table(t, ctx_keys, "context") for t, _ in targets]
        + [_anchor_table(t, q_keys, "query") for t, _ in targets]
    )
    values = {
        "binary": labels[:N_CTX].astype(float),
        "regression": np.arange(N_CTX) % 7.0,
        "ranking": np.full(N_CTX, np.nan),
    }
    pattern = np.arange(N_CTX + N_QUERY) % 3 == 0
    if siblings:
        values["binary"] = pattern[:N_CTX].astype(float)
    # ranking: each anchor's next item is the one its entity linked to before (its history)
    before = ["i1" if i % 3 else "i2" for i in range(N_CTX + N_QUERY)]
    items = [[b] for b in before[:N_CTX]]
    lab = pa.concat_tables(
        [
            pa.table(
                {
                    "target_name": [t] * N_CTX,
                    "entity_id": [k[0] for k in ctx_keys],
                    "anchor_time": pa.array([k[1] for k in ctx_keys], pa.timestamp("us")),
                    "label": pa.array(values[task]),
                    "label_class": pa.array([None] * N_CTX, pa.string()),
                    "label_items": pa.array(
                        items if task == "ranking" else [None] * N_CTX, pa.list_(pa.string())
                    ),
                }
            )
            for t, task in targets
        ]
    )
    history = pa.concat_tables(
        [
            pa.table(
                {
                    "target_name": [t] * len(keys),
                    "entity_id": [k[0] for k in keys],
                    "anchor_time": pa.array([k[1] for k in keys], pa.timestamp("us")),
                    "item": before,
                    **{f"n_window_{w}": [2] * len(keys) for w in (1, 4, 13)},
                    "n_all": [2] * len(keys),
                    "windows_since_last": [0.5] * len(keys),
                }
            )
            for t, task in targets
            if task == "ranking"
        ]
        or [pa.table({"target_name": pa.array([], pa.string())})]
    )
    # regression: each label is its anchor's per-window rate over the last window
    rate = np.concatenate([values["regression"], np.arange(N_QUERY) % 5.0 + 0.5])
    past = pa.concat_tables(
        [
            pa.table(
                {
                    "target_name": [t] * len(keys),
                    "entity_id": [k[0] for k in keys],
                    "anchor_time": pa.array([k[1] for k in keys], pa.timestamp("us")),
                    **{f"per_window_{w}": rate for w in (1, 4, 13)},
                }
            )
            for t, task in targets
            if task == "regression"
        ]
        or [pa.schema([("target_name", pa.string()), *TARGET_HISTORY]).empty_table()]
    )
    kin = pa.concat_tables(
        [
            pa.table(
                {
                    "target_name": [t] * len(keys),
                    "entity_id": [k[0] for k in keys],
                    "anchor_time": pa.array([k[1] for k in keys], pa.timestamp("us")),
                    "link": ["origin"] * len(keys),
                    "window_length": pa.array([3] * len(keys), pa.int64()),
                    "column_name": [""] * len(keys),
                    "n_known": pa.array([10] * len(keys), pa.int64()),
                    "value_sum": np.where(pattern, 9.0, 1.0),
                    "n_pending": pa.array([0] * len(keys), pa.int64()),
                }
            )
            for t, task in targets
            if task == "binary" and siblings
        ]
        or [pa.schema([("target_name", pa.string()), *SIBLING_HISTORY]).empty_table()]
    )
    rows = ", ".join(f"('{t}', '{task}', null::varchar, null::integer)" for t, task in targets)
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create table rfm_targets as select * from (values "
            f"{rows}) as v(target_name, task, target_column, top_k)"
        )
        tables = (
            ("rfm_anchors", anchors),
            ("rfm_labels", lab),
            ("rfm_cells", cells),
            ("rfm_item_history", history),
            ("rfm_target_history", past),
            ("rfm_sibling_history", kin),
        )
        for name, table in tables:
            con.register("src", table)
            con.execute(f"create table {name} as select * from src")
            con.unregister("src")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("art") / "small"
    export_small(prefix, seed=4)
    return prefix


def _score(path, artifact, monkeypatch) -> tuple[pa.Table, list]:
    reads: list[tuple[str, tuple[str, ...]]] = []

    def spy(self, t, roles):
        reads.append((t.name, tuple(roles)))
        return READ_CELLS(self, t, roles)

    monkeypatch.setattr(scoring._Reads, "cells", spy)
    with duckdb.connect(str(path), read_only=True) as con:
        inputs = ScoringInputs(*(con.table(n) for n in NAMES))
        out = predictions(con, inputs, settings={"artifact": str(artifact)}).read_all()
    return out, reads


def test_second_target_reads_no_cells_and_scores_as_alone(tmp_path, artifact, monkeypatch):
    both = tmp_path / "both.duckdb"
    _warehouse(both, [("a_binary", "binary"), ("b_regression", "regression")])
    alone = tmp_path / "alone.duckdb"
    _warehouse(alone, [("b_regression", "regression")])
    got, reads = _score(both, artifact, monkeypatch)
    want, _ = _score(alone, artifact, monkeypatch)
    assert reads == [("a_binary", ("context", "query"))]  # one query for both roles
    assert got.num_rows == 2 * N_QUERY
    mine = got.filter(pa.compute.equal(got["target_name"], "b_regression"))
    assert mine["entity_id"].to_pylist() == want["entity_id"].to_pylist()
    np.testing.assert_allclose(
        np.array(mine["prediction"].to_pylist(), float),
        np.array(want["prediction"].to_pylist(), float),
        atol=1e-5,
    )


def test_ranking_target_ranks_by_its_item_history(tmp_path, artifact, monkeypatch):
    """rfm_item_history reaches the readout: each query's top item is the one its entity
    linked to before, as for the context anchors; its cells were encoded by the first target."""
    path = tmp_path / "rank.duckdb"
    _warehouse(path, [("a_binary", "binary"), ("b_ranking", "ranking")])
    got, reads = _score(path, artifact, monkeypatch)
    assert reads == [("a_binary", ("context", "query"))]
    ranked = got.filter(pa.compute.equal(got["target_name"], "b_ranking"))
    with duckdb.connect(str(path), read_only=True) as con:
        want = dict(con.execute("select entity_id, item from rfm_item_history").fetchall())
    assert ranked.num_rows == N_QUERY
    assert {want[e] for e in ranked["entity_id"].to_pylist()} == {"i1", "i2"}
    top = zip(ranked["entity_id"].to_pylist(), ranked["predicted_class"].to_pylist(), strict=True)
    got_top = dict(top)
    assert got_top == {e: want[e] for e in got_top}


def test_regression_target_reads_its_history(tmp_path, artifact, monkeypatch):
    """rfm_target_history reaches the regression readout: the labels follow each anchor's
    past rate, and so do the predictions."""
    path = tmp_path / "regression.duckdb"
    _warehouse(path, [("b_regression", "regression")])
    got, _ = _score(path, artifact, monkeypatch)
    with duckdb.connect(str(path), read_only=True) as con:
        sql = "select entity_id, per_window_1 from rfm_target_history"
        rate = dict(con.execute(sql).fetchall())
    want = np.array([rate[e] for e in got["entity_id"].to_pylist()])
    assert got.num_rows == N_QUERY and len(set(want)) == 5
    np.testing.assert_allclose(np.array(got["prediction"].to_pylist(), float), want, atol=0.2)


def test_static_binary_target_reads_its_sibling_history(tmp_path, artifact, monkeypatch):
    """rfm_sibling_history reaches the binary readout: the labels follow the siblings' rate,
    and so do the probabilities."""
    path = tmp_path / "siblings.duckdb"
    _warehouse(path, [("a_binary", "binary")], siblings=True)
    got, _ = _score(path, artifact, monkeypatch)
    with duckdb.connect(str(path), read_only=True) as con:
        sql = "select entity_id, value_sum from rfm_sibling_history"
        rate = dict(con.execute(sql).fetchall())
    high = np.array([rate[e] > 5 for e in got["entity_id"].to_pylist()])
    prob = np.array(got["probability"].to_pylist(), float)
    assert got.num_rows == N_QUERY and 0 < high.sum() < N_QUERY
    assert prob[high].min() > 0.5 > prob[~high].max()


@pytest.mark.parametrize(
    ("roles", "chunk"), [(["context"] * 5 + ["query"] * 4, 3), (["query"] * 4, 2), ([], 1)]
)
def test_one_stream_splits_into_roles_across_batch_edges(roles: list[str], chunk: int) -> None:
    table = pa.table({"x": list(range(len(roles))), scoring._ROLE: pa.array(roles, pa.string())})
    streams = scoring._RoleStreams(iter(table.to_batches(max_chunksize=chunk)))
    got = {r: pa.Table.from_batches(list(streams.role(r)), pa.schema([("x", pa.int64())]))
           for r in ("context", "query")}  # fmt: skip
    for role, part in got.items():
        assert part.column_names == ["x"]
        assert part["x"].to_pylist() == [i for i, r in enumerate(roles) if r == role]
