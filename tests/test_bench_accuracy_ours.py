"""The foundation-model arms of the accuracy benchmark: context choice, the shared val/test
subsample, merging result files, the pretraining curve, and the zero-shot arm end to end on a
tiny graph with a tiny random net (plumbing only; accuracy is the benchmark's job)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from bench.accuracy import ours
from bench.accuracy.arms import RANK_K, ArmContext
from bench.accuracy.graph import flights_graph
from bench.accuracy.metrics import auroc
from bench.accuracy.ours import ZeroShot, context_rows
from bench.accuracy.pretrain_curve import read_curve, table
from bench.accuracy.run import _add_gaps, _store, markdown, merge
from bench.accuracy.subsample import keep_rows, subsample_eval
from bench.accuracy.tasks import TASKS, TaskSplits
from dbt_rfm.errors import RfmError
from dbt_rfm.spec import ColumnSpec, GraphSpec, LinkSpec, TableSpec
from tests.rfm_synthetic import export_small

T0 = datetime(2013, 6, 1)


def _anchors(n: int, n_times: int, label: list[object] | None = None) -> pa.Table:
    ids = [f"P{i % 7}" for i in range(n)]
    times = [T0 + timedelta(days=7 * (i % n_times)) for i in range(n)]
    cols = {"entity_id": pa.array(ids), "anchor_time": pa.array(times, pa.timestamp("us"))}
    if label is not None:
        cols["label"] = pa.array(label)
    return pa.table(cols)


def test_context_prefers_recent_times_and_ignores_row_order() -> None:
    train = _anchors(40, 4)
    kept = context_rows(train, 12)
    times = train.column("anchor_time").to_pylist()
    assert len(kept) == 12 and list(kept) == sorted(kept)
    newest = sorted(set(times))[-1]
    n_newest = sum(t == newest for t in times)  # 10 rows at the newest time
    assert sum(times[i] == newest for i in kept) == n_newest
    perm = np.random.default_rng(0).permutation(40)
    shuffled = train.take(pa.array(perm))
    again = {(shuffled["entity_id"][int(i)].as_py(), shuffled["anchor_time"][int(i)].as_py())
             for i in context_rows(shuffled, 12)}  # fmt: skip
    assert again == {(train["entity_id"][int(i)].as_py(), times[i]) for i in kept}
    assert len(context_rows(train, 100)) == 40


def test_each_split_gets_the_context_of_its_weekday() -> None:
    times = [T0 + timedelta(days=d) for d in (0, 2, 7, 9, 14, 16)]  # two weekdays, 3 weeks
    train = pa.table({"entity_id": [f"P{i}" for i in range(6)],
                      "anchor_time": pa.array(times, pa.timestamp("us"))})  # fmt: skip

    def at(*days: float) -> pa.Table:
        when = [T0 + timedelta(days=d) for d in days]
        return pa.table({"entity_id": ["Q"] * len(days),
                         "anchor_time": pa.array(when, pa.timestamp("us"))})  # fmt: skip

    assert ours.split_context(train, at(28, 35), 10).tolist() == [0, 2, 4]
    assert ours.split_context(train, at(30), 2).tolist() == [3, 5]  # the newest of its weekday
    assert ours.split_context(train, at(28, 30), 10).tolist() == list(range(6))  # static task
    with pytest.raises(RfmError, match="no training anchor has the weekday"):
        ours.split_context(train, at(29), 10)


def test_subsample_is_shared_and_leaves_train_alone() -> None:
    task = TASKS["plane_delay_7d"]
    t = _anchors(50, 5, [i % 2 == 0 for i in range(50)])
    splits = subsample_eval(TaskSplits(task, t, t, t.slice(0, 3)), 10)
    assert splits.train.num_rows == 50
    assert splits.val.num_rows == 10 and splits.test.num_rows == 3
    assert keep_rows(t, 10, seed=1).tolist() != keep_rows(t, 10, seed=0).tolist()
    with pytest.raises(RfmError):
        keep_rows(t, 0)


def test_merge_keeps_other_rows_and_rejects_other_subsamples() -> None:
    old = {"max_eval": 5, "tasks": {"a": 1}, "results": [
        {"task": "a", "arm": "x", "value": 1}, {"task": "a", "arm": "y", "value": 2}]}  # fmt: skip
    new = {"max_eval": 5, "tasks": {"a": 1}, "results": [{"task": "a", "arm": "y", "value": 3}]}
    out = merge(old, new)
    assert sorted((r["arm"], r["value"]) for r in out["results"]) == [("x", 1), ("y", 3)]
    with pytest.raises(RfmError, match="max_eval"):
        merge(old | {"max_eval": None}, new)


def test_gap_against_stored_reference_predictions(tmp_path, monkeypatch) -> None:
    """An arm run without the reference gets its gap against the reference's predictions that
    an earlier run stored for the same labels, and the table says so; other labels get none."""
    monkeypatch.setattr("bench.accuracy.run.PREDICTIONS", tmp_path)
    y = np.array([0, 0, 1, 1, 0, 1] * 20)
    reference = np.where(y == 1, 0.6, 0.4) + np.linspace(0, 0.3, len(y))
    _store("t", "lgbm_aggregates", y, reference)
    ours = y * 0.5 + 0.1
    rows = [{"task": "t", "arm": "ours_finetuned", "metric": "auroc", "value": 1.0,
             "val_value": 1.0, "seconds": {"features": 0, "train": 0, "score": 0}}]  # fmt: skip
    _add_gaps(rows, "t", "binary", y, {"ours_finetuned": ours})
    vs = rows[0]["vs_lgbm_aggregates"]
    assert vs["gap"] == pytest.approx(1.0 - auroc(y, reference), abs=1e-4)
    assert vs["reference_stored_at"]
    assert "gap to lgbm_aggregates of 20" in markdown({"tasks": {"t": {}}, "results": rows})
    other = [dict(rows[0])]
    del other[0]["vs_lgbm_aggregates"]
    _add_gaps(other, "t", "binary", 1 - y, {"ours_finetuned": ours})
    assert "vs_lgbm_aggregates" not in other[0]


def test_pretrain_curve_reads_metric_lines(tmp_path: Path) -> None:
    lines = [
        {"step": 0, "loss": None, "metrics": {"s_heldout": {"auroc": 0.5, "n_auroc": 3}}},
        {"step": 5, "loss": 2.0},  # a progress line without metrics
        {"step": 10, "loss": 1.5, "metrics": {"s_heldout": {"auroc": 0.75, "n_auroc": 3}}},
    ]
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    points = read_curve(tmp_path)
    assert [p["step"] for p in points] == [0, 10]
    text = table(points)
    assert "| 10 | 1.500 | 0.750 |" in text and "s auroc: 3" in text
    (tmp_path / "log.jsonl").write_text(json.dumps(lines[1]) + "\n")
    with pytest.raises(RfmError, match="no line"):
        read_curve(tmp_path)


def _tiny_graph() -> tuple[duckdb.DuckDBPyConnection, GraphSpec]:
    con = duckdb.connect()
    con.execute("create table planes as select 'P' || i as tailnum, 100 + i as seats "
                "from range(7) t(i)")  # fmt: skip
    con.execute("create table airports as select unnest(['ATL', 'ORD', 'BOS']) as faa")
    con.execute(
        "create table flights as select i as flight_id, 'P' || (i % 7) as tailnum, "
        "timestamp '2013-05-01' + i * interval 9 hour as scheduled_departure, "
        "(i * 37) % 50 as dep_delay, ['ATL', 'ORD', 'BOS'][1 + i % 3] as dest, "
        "scheduled_departure + to_minutes(dep_delay) as departed_at, i % 11 = 0 as cancelled "
        "from range(400) t(i)"
    )
    spec = GraphSpec(
        tables=(
            TableSpec("planes", "planes", ("tailnum",), None, (
                ColumnSpec("tailnum", "varchar", "key"),
                ColumnSpec("seats", "bigint", "numerical"))),
            TableSpec("flights", "flights", ("flight_id",), "scheduled_departure", (
                ColumnSpec("flight_id", "bigint", "key"),
                ColumnSpec("tailnum", "varchar", "key"),
                ColumnSpec("scheduled_departure", "timestamp", "timestamp"),
                ColumnSpec("dep_delay", "bigint", "numerical", "departed_at"),
                ColumnSpec("dest", "varchar", "key"),
                ColumnSpec("departed_at", "timestamp", "timestamp"),
                ColumnSpec("cancelled", "boolean", "boolean", "departed_at"))),
            TableSpec("airports", "airports", ("faa",), None, (
                ColumnSpec("faa", "varchar", "key"),)),
        ),
        links=(LinkSpec("flights", ("tailnum",), "planes", ("tailnum",)),
               LinkSpec("flights", ("dest",), "airports", ("faa",))),
    )  # fmt: skip
    return con, spec


@pytest.mark.parametrize(
    ("task", "label"),
    [
        ("plane_delay_7d", lambda i: i % 3 == 0),
        ("plane_flights_30d", lambda i: float(i % 5)),
        ("plane_next_dests_7d", lambda i: [["ATL"], ["ORD", "BOS"], ["BOS"]][i % 3]),
    ],
)
def test_zero_shot_scores_every_val_and_test_row(
    task: str, label: Callable[[int], object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_small(tmp_path / "net")
    monkeypatch.setenv("RFM_BENCH_ARTIFACT", str(tmp_path / "net"))
    con, spec = _tiny_graph()
    monkeypatch.setattr(ours, "declared_graph", lambda: spec)
    train = _anchors(30, 3, [label(i) for i in range(30)])
    later = _anchors(9, 1, [label(i) for i in range(9)])
    val = later.set_column(1, "anchor_time", pa.array([T0 + timedelta(days=35)] * 9,
                                                      pa.timestamp("us")))  # fmt: skip
    test = later.set_column(1, "anchor_time", pa.array([T0 + timedelta(days=42)] * 9,
                                                       pa.timestamp("us")))  # fmt: skip
    ctx = ArmContext(con, flights_graph(), TaskSplits(TASKS[task], train, val, test.slice(0, 5)))
    out = ZeroShot().run(ctx)
    assert out.params["coverage"] == 1.0 and out.params["context"] == 30
    assert len(out.val) == 9 and len(out.test) == 5
    if task == "plane_next_dests_7d":
        assert all(len(r) == RANK_K or set(r) == {"ATL", "ORD", "BOS"} for r in out.test)
        assert all(set(r) <= {"ATL", "ORD", "BOS"} for r in out.val)
    elif task == "plane_delay_7d":
        assert np.all((out.test >= 0) & (out.test <= 1)) and np.isfinite(out.val).all()
    else:
        assert np.isfinite(out.test).all()
    assert set(out.seconds) == {"features", "train", "score"}


def test_finetuned_arm_trains_and_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from bench.accuracy import ours_finetune
    from dbt_rfm.nn.train import save_checkpoint

    encoder, head, _ = export_small(tmp_path / "net")
    save_checkpoint(tmp_path / "net.pt", encoder, head)
    monkeypatch.setenv("RFM_BENCH_ARTIFACT", str(tmp_path / "net"))
    monkeypatch.delenv("RFM_BENCH_CHECKPOINT", raising=False)
    small = replace(
        ours_finetune.CONFIG, max_steps=4, eval_every=2, context_size=8, query_size=4, val_queries=8
    )
    monkeypatch.setattr(ours_finetune, "CONFIG", small)
    con, spec = _tiny_graph()
    monkeypatch.setattr(ours, "declared_graph", lambda: spec)
    # five weekly times: a 7-day label is known for a cut two weeks in
    train = _anchors(40, 5, [i % 3 == 0 for i in range(40)])
    val = _anchors(9, 1, [i % 3 == 0 for i in range(9)])
    val = val.set_column(1, "anchor_time", pa.array([T0 + timedelta(days=35)] * 9,
                                                    pa.timestamp("us")))  # fmt: skip
    test = val.set_column(1, "anchor_time", pa.array([T0 + timedelta(days=42)] * 9,
                                                     pa.timestamp("us")))  # fmt: skip
    ctx = ArmContext(con, flights_graph(), TaskSplits(TASKS["plane_delay_7d"], train, val, test))
    out = ours_finetune.Finetuned().run(ctx)
    assert out.params["steps"] <= 4 and out.params["coverage"] == 1.0
    assert len(out.test) == 9 and np.all((out.test >= 0) & (out.test <= 1))
    assert out.seconds["train"] > 0
    assert "skipped" in out.params["trees"]  # 40 training anchors: too few for the tree head


def test_rolling_context_only_reads_labels_closed_by_each_query_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.accuracy import ours_rolling

    export_small(tmp_path / "net")
    monkeypatch.setenv("RFM_BENCH_ARTIFACT", str(tmp_path / "net"))
    con, spec = _tiny_graph()
    monkeypatch.setattr(ours, "declared_graph", lambda: spec)
    seen: list[tuple[datetime, list[datetime]]] = []
    real = ours_rolling.score_queries

    def spy(session, ctx, c_cells, context, q_cells, history):  # type: ignore[no-untyped-def]
        (t,) = set(q_cells.column("anchor_time").to_pylist())
        seen.append((t, context.column("anchor_time").to_pylist()))
        return real(session, ctx, c_cells, context, q_cells, history)

    monkeypatch.setattr(ours_rolling, "score_queries", spy)
    label = [i % 2 == 0 for i in range(9)]
    train = _anchors(30, 3, [i % 2 == 0 for i in range(30)])
    val = _anchors(9, 1, label).set_column(
        1, "anchor_time", pa.array([T0 + timedelta(days=35)] * 9, pa.timestamp("us"))
    )
    test = _anchors(9, 1, label).set_column(
        1, "anchor_time", pa.array([T0 + timedelta(days=42)] * 9, pa.timestamp("us"))
    )
    ctx = ArmContext(con, flights_graph(), TaskSplits(TASKS["plane_delay_7d"], train, val, test))
    out = ours_rolling.Rolling().run(ctx)
    assert out.params["coverage"] == 1.0 and out.params["query_times"] == 2
    window = TASKS["plane_delay_7d"].window
    assert window is not None
    for t, times in seen:
        assert times and all(c + window <= t for c in times), t
    by_time = dict(seen)
    assert T0 + timedelta(days=35) in by_time[T0 + timedelta(days=42)]  # val labels, closed
    assert T0 + timedelta(days=35) not in by_time[T0 + timedelta(days=35)]


def test_delays_of_flights_not_yet_departed_are_not_inputs() -> None:
    from bench.accuracy.rfm_graph import graph_tables
    from dbt_rfm.sampling import GraphIndex

    con, spec = _tiny_graph()
    index = GraphIndex.build(spec, graph_tables(con, spec))
    # plane P0 flies flights 0, 7, 14, ... every 63 hours; flight 14 (dep_delay 18) is scheduled
    # 10 minutes before the anchor, so it departs 8 minutes after it
    at = datetime(2013, 5, 1) + timedelta(hours=9 * 14, minutes=10)
    anchors = pa.table({"entity_id": ["P0"], "anchor_time": pa.array([at], pa.timestamp("us"))})
    cells = ours.anchor_cells(index, anchors, "planes")
    by_row = {}
    for r in cells.filter(pa.compute.equal(cells["table_name"], "flights")).to_pylist():
        by_row.setdefault(r["row_key"], set()).add(r["column_name"])
    assert "dep_delay" not in by_row["14"] and "scheduled_departure" in by_row["14"]
    assert "dep_delay" in by_row["7"]
    assert not any("departed_at" in cols for cols in by_row.values())  # a time, not a cell


def test_finetune_reads_a_seeded_subsample_over_all_times() -> None:
    from bench.accuracy.ours_finetune import FT_TRAIN, finetune_rows

    rows = finetune_rows(5 * FT_TRAIN)  # training anchors are in time order
    assert len(rows) == FT_TRAIN and np.all(np.diff(rows) > 0)
    assert rows[0] < FT_TRAIN // 10 and rows[-1] > 4.9 * FT_TRAIN  # old and new anchors
    assert np.array_equal(rows, finetune_rows(5 * FT_TRAIN))
    assert np.array_equal(finetune_rows(7), np.arange(7))


def test_table_says_when_and_at_which_commit_a_row_ran() -> None:
    row = {"task": "t", "arm": "ours_zero_shot", "metric": "auroc", "value": 0.7, "val_value": 0.6,
           "seconds": {"features": 0, "train": 0, "score": 0}, "ran_at": "2026-12-04T16:00:00Z",
           "commit": "0123456789ab+", "params": {"context_per_time": 5}}  # fmt: skip
    old = {k: v for k, v in row.items() if k not in ("ran_at", "commit", "params")}
    zero_shot = old | {"params": {"context": 20000}}
    line = markdown({"tasks": {"t": {}}, "results": [row, old, zero_shot]}).split("\n")[2:]
    assert line[0].endswith("| 2026-12-04 0123456789ab+ | context 5 per query time |")
    assert line[1].endswith("| 0.0 |  |  |")
    assert line[2].endswith("| 0.0 |  | context 20000 |")
