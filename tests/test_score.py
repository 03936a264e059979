"""Scoring: streams lazily, one row per query anchor, PREDICTIONS schema, every task type."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("torch")

from rfm_runtime.errors import RfmError  # noqa: E402
from rfm_runtime.schema import ANCHORS, PREDICTIONS, embeddings_schema  # noqa: E402
from rfm_runtime.score import as_reader, embed, score  # noqa: E402
from rfm_runtime.session import RfmSession  # noqa: E402
from rfm_synthetic import anchors_of, export_small, label_table, make_cells  # noqa: E402

CTX_CELLS, CTX_Y = make_cells(40, seed=21)
Q_CELLS, _ = make_cells(23, seed=22, prefix="q")


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> RfmSession:
    prefix = tmp_path_factory.mktemp("art") / "small"
    export_small(prefix, seed=7)
    return RfmSession.open(prefix)


class CountingBatches:
    """A one-anchor-per-batch generator that records how far it has been read."""

    def __init__(self, cells: pa.Table) -> None:
        self.cells, self.pulled = cells, 0

    def __iter__(self):
        for eid, _ in anchors_of(self.cells):
            self.pulled += 1
            yield self.cells.filter(pa.compute.equal(self.cells["entity_id"], eid)).to_batches()[0]


def _ctx():
    return CTX_CELLS.to_batches(max_chunksize=50), label_table(CTX_CELLS, CTX_Y)


def test_binary_scores_stream_lazily_one_row_per_anchor(session: RfmSession) -> None:
    ctx_cells, labels = _ctx()
    queries = CountingBatches(Q_CELLS)
    seen = []
    out = score(
        session,
        ctx_cells,
        labels,
        iter(queries),
        "binary",
        "big_spender",
        batch_size=5,
        total_queries=23,
        progress=seen.append,
        dbt_invocation_id="inv",
    )
    first = next(out)
    assert first.num_rows == 5 and queries.pulled == 6  # 5 anchors + the start of the 6th
    rest = list(out)
    table = pa.Table.from_batches([first, *rest])
    assert table.schema == PREDICTIONS
    assert table.num_rows == 23 and queries.pulled == 23
    assert table["entity_id"].to_pylist() == [k[0] for k in anchors_of(Q_CELLS)]
    p = table["probability"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_array_equal(table["prediction"].to_numpy(), (p >= 0.5).astype(float))
    assert set(table["model_version"].to_pylist()) == {session.model_version}
    assert set(table["dbt_invocation_id"].to_pylist()) == {"inv"}
    assert seen[-1].done == 23 and seen[-1].total == 23


def test_query_anchors_without_cells_still_get_a_row(session: RfmSession) -> None:
    ctx_cells, labels = _ctx()
    keys = anchors_of(Q_CELLS)
    listed = [("lonely", dt.datetime(2024, 5, 1)), *keys]
    anchors = pa.table(
        {
            "entity_id": [k[0] for k in listed],
            "anchor_time": pa.array([k[1] for k in listed], pa.timestamp("us")),
        },
        schema=ANCHORS,
    )
    reader = as_reader(
        PREDICTIONS,
        score(
            session,
            ctx_cells,
            labels,
            Q_CELLS.to_batches(max_chunksize=30),
            "binary",
            "t",
            query_anchors=anchors.to_batches(),
            batch_size=4,
        ),
    )
    table = reader.read_all()
    assert table["entity_id"].to_pylist() == [k[0] for k in listed]
    assert table["probability"].null_count == 0


def test_multiclass_and_regression(session: RfmSession) -> None:
    ctx_cells, labels = _ctx()
    rng = np.random.default_rng(0)
    names = rng.choice(["red", "green", "blue"], size=labels.num_rows).tolist()
    multi = labels.append_column("label_class", pa.array(names))
    table = pa.Table.from_batches(
        list(score(session, ctx_cells, multi, Q_CELLS.to_batches(), "multiclass", "c"))
    )
    scores = table["class_scores"].to_pylist()
    for best, row in zip(table["predicted_class"].to_pylist(), scores, strict=True):
        assert {s["class"] for s in row} == {"red", "green", "blue"}
        assert sum(s["score"] for s in row) == pytest.approx(1.0, abs=1e-5)
        assert row[0]["class"] == best
    values = rng.lognormal(2, 1, size=labels.num_rows)
    reg = labels.set_column(2, "label", pa.array(values))
    out = pa.Table.from_batches(
        list(score(session, _ctx()[0], reg, Q_CELLS.to_batches(), "regression", "r"))
    )
    pred = out["prediction"].to_numpy()
    assert (pred >= values.min() - 1e-9).all() and (pred <= values.max() + 1e-9).all()
    assert out["probability"].null_count == out.num_rows


def test_bad_labels_are_rfm_errors(session: RfmSession) -> None:
    ctx_cells, labels = _ctx()
    with pytest.raises(RfmError, match="labels 0/1"):
        next(
            score(
                session,
                ctx_cells,
                labels.set_column(2, "label", pa.array([2.0] * labels.num_rows)),
                Q_CELLS.to_batches(),
                "binary",
                "t",
            )
        )
    with pytest.raises(RfmError, match="lack column 'label'"):
        next(
            score(
                session,
                ctx_cells,
                labels.drop_columns(["label"]),
                Q_CELLS.to_batches(),
                "binary",
                "t",
            )
        )
    with pytest.raises(RfmError, match="task 'churn'"):
        next(score(session, ctx_cells, labels, Q_CELLS.to_batches(), "churn", "t"))


def test_embeddings_stream(session: RfmSession) -> None:
    table = pa.Table.from_batches(
        list(embed(session, Q_CELLS.to_batches(max_chunksize=17), "t", batch_size=4))
    )
    assert table.schema == embeddings_schema(session.embedding_dim)
    assert table.num_rows == 23
    emb = np.stack(table["embedding"].to_numpy(zero_copy_only=False))
    assert emb.shape == (23, session.embedding_dim) and np.isfinite(emb).all()


def test_progress_rate_and_eta() -> None:
    from rfm_runtime.progress import Progress, ProgressTracker

    p = Progress("scoring t", done=50, total=200, elapsed_s=10.0)
    assert p.rate == 5.0 and p.eta_s == 30.0
    assert "50/200 anchors (25%)" in p.message() and "ETA 30s" in p.message()
    assert Progress("x", 5, None, 1.0).eta_s is None
    seen: list[Progress] = []
    tracker = ProgressTracker("t", 10, seen.append, every_s=0.0)
    tracker.update(4)
    tracker.update(6)
    assert [s.done for s in seen] == [4, 10] and tracker.finish().done == 10


def test_ranking_with_list_labels(session: RfmSession) -> None:
    ctx_cells, labels = _ctx()
    rng = np.random.default_rng(3)
    items = [sorted(set(rng.choice(["p0", "p1", "p2", "p3"], size=rng.integers(0, 3)))) for _ in
             range(labels.num_rows)]  # fmt: skip
    ranked = labels.set_column(2, "label", pa.array(items, pa.list_(pa.string())))
    out = pa.Table.from_batches(
        list(score(session, ctx_cells, ranked, Q_CELLS.to_batches(), "ranking", "next", top_k=2))
    )
    assert out.num_rows == 23 and out["prediction"].null_count == 23
    seen = {i for row in items for i in row}
    for best, row in zip(
        out["predicted_class"].to_pylist(), out["class_scores"].to_pylist(), strict=True
    ):
        assert len(row) == 2 and row[0]["class"] == best and best in seen
        assert row[0]["score"] >= row[1]["score"] and 0 <= row[1]["score"] <= 1


def test_an_aggregate_binary_target_reads_its_own_history(session: RfmSession) -> None:
    """A binary target over an aggregate (EXISTS) whose label follows its own past (rows per
    window, ``TARGET_HISTORY``): the readout learns it, the head alone (random net) does not;
    the history terms are the readout's inputs (the tree head reads them)."""
    from rfm_runtime.history import HISTORY_TERMS
    from rfm_runtime.schema import TARGET_HISTORY

    from bench.accuracy.metrics import auroc

    cells, _ = make_cells(300, seed=3)
    keys = anchors_of(cells)
    past = np.random.default_rng(4).poisson(2.0, size=(len(keys), len(HISTORY_TERMS)))
    y = (past[:, 1] > 2).astype(np.int64)
    history = pa.table(
        {"entity_id": [e for e, _ in keys], "anchor_time": [t for _, t in keys]}
        | {t: past[:, j].astype(np.float64) for j, t in enumerate(HISTORY_TERMS)},
        schema=TARGET_HISTORY,
    )
    ctx = pa.array([e for e, _ in keys[:200]])
    ctx_cells = cells.filter(pa.compute.is_in(cells["entity_id"], ctx))
    labels = label_table(ctx_cells, y[:200])

    def probability(with_history: bool) -> np.ndarray:
        out = score(session, ctx_cells.to_batches(), labels, cells.to_batches(), "binary",
                    "late_soon", history=history if with_history else None)  # fmt: skip
        return pa.Table.from_batches(list(out))["probability"].to_numpy()[200:]

    assert auroc(y[200:], probability(True)) > 0.9 > auroc(y[200:], probability(False)) + 0.2
