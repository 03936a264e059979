"""``dbt-rfm finetune``: time split, the fine-tuning loop, the warehouse reader, the artifact.

A tiny synthetic warehouse (rfm_targets, rfm_anchors, rfm_labels, rfm_cells made directly in
a temp DuckDB file) stands in for what ``dbt build`` writes: customers whose label (order
amounts above the median) is learnable from their cells, anchors on ten days, queries after.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import duckdb
import numpy as np
import pyarrow as pa
import pytest

torch = pytest.importorskip("torch")

from rfm_runtime.session import RfmSession  # noqa: E402
from rfm_runtime.tokenize import tokenize  # noqa: E402

from dbt_rfm.cli import main  # noqa: E402
from dbt_rfm.errors import RfmError  # noqa: E402
from dbt_rfm.finetune import loop  # noqa: E402
from dbt_rfm.finetune.command import run_finetune  # noqa: E402
from dbt_rfm.finetune.config import FinetuneConfig  # noqa: E402
from dbt_rfm.finetune.loop import finetune_arrays  # noqa: E402
from dbt_rfm.finetune.split import as_slice, split_by_time  # noqa: E402
from dbt_rfm.finetune.trees import TreeFit, prefer_base  # noqa: E402
from dbt_rfm.nn.train import build_net, save_checkpoint  # noqa: E402
from dbt_rfm.scoring import ScoringInputs, predictions  # noqa: E402
from dbt_rfm.spec import ColumnSpec, GraphSpec, LinkSpec, TableSpec  # noqa: E402
from tests.rfm_synthetic import T0, anchors_of, make_cells, small_net_config  # noqa: E402

N_LABELLED, N_QUERY, DAYS = 240, 20, 10
#: customers <- orders: the declared graph of the test warehouse.
GRAPH = GraphSpec(
    (
        TableSpec("customers", '"customers"', ("customer_id",), None,
                  (ColumnSpec("customer_id", "varchar", "key"),)),
        TableSpec("orders", '"orders"', ("order_id",), "ordered_at", (
            ColumnSpec("order_id", "bigint", "key"),
            ColumnSpec("customer_id", "varchar", "key"),
            ColumnSpec("ordered_at", "timestamp", "timestamp"),
            ColumnSpec("amount", "double", "numerical"),
        )),
    ),
    (LinkSpec("orders", ("customer_id",), "customers", ("customer_id",)),),
)  # fmt: skip
DAY_US = 86_400_000_000
FAST = FinetuneConfig(max_steps=40, eval_every=10, patience=3, lr=1e-3, context_size=48, threads=1)


def _retime(cells: pa.Table, days: int, offset: int = 0) -> pa.Table:
    """Spread the anchors of ``cells`` over ``days`` days (anchor i on day offset + i % days)."""
    keys = anchors_of(cells)
    when = {e: T0 + dt.timedelta(days=offset + i % days) for i, (e, _) in enumerate(keys)}
    times = pa.array([when[e] for e in cells["entity_id"].to_pylist()], pa.timestamp("us"))
    return cells.set_column(cells.schema.get_field_index("anchor_time"), "anchor_time", times)


@pytest.fixture(scope="module")
def data():
    """Labelled cells (ten anchor days), their labels, and query cells (a later day)."""
    cells, labels = make_cells(N_LABELLED + N_QUERY, seed=3)
    keys = anchors_of(cells)
    query_ids = {k[0] for k in keys[N_LABELLED:]}
    is_q = np.array([e in query_ids for e in cells["entity_id"].to_pylist()])
    ctx = _retime(cells.filter(pa.array(~is_q)), DAYS)
    qry = _retime(cells.filter(pa.array(is_q)), 1, offset=DAYS + 5)
    return ctx, labels[:N_LABELLED], qry


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A seeded tiny net saved as a checkpoint (stands in for dbt_rfm/weights/rfm-small.pt)."""
    encoder, head = build_net(small_net_config(), seed=0)
    return save_checkpoint(tmp_path_factory.mktemp("base") / "base.pt", encoder, head)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, data):
    """A DuckDB file with the four package models fine-tuning and scoring read."""
    ctx, labels, qry = data
    path = tmp_path_factory.mktemp("wh") / "rfm.duckdb"
    ctx_keys, q_keys = anchors_of(ctx), anchors_of(qry)
    anchors = pa.table(
        {
            "target_name": ["big_spender"] * (len(ctx_keys) + len(q_keys)),
            "entity_id": [k[0] for k in ctx_keys + q_keys],
            "anchor_time": pa.array([k[1] for k in ctx_keys + q_keys], pa.timestamp("us")),
            "role": ["context"] * len(ctx_keys) + ["query"] * len(q_keys),
        }
    )
    lab = pa.table(
        {
            "target_name": ["big_spender"] * len(ctx_keys),
            "entity_id": [k[0] for k in ctx_keys],
            "anchor_time": pa.array([k[1] for k in ctx_keys], pa.timestamp("us")),
            "label": pa.array(labels.astype(float)),
            "label_class": pa.array([None] * len(ctx_keys), pa.string()),
            "label_items": pa.array([None] * len(ctx_keys), pa.list_(pa.string())),
        }
    )
    cells = pa.concat_tables([ctx, qry])
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create table rfm_targets as select 'big_spender' as target_name, "
            "'customers' as entity, 'aggregate' as kind, 'binary' as task, "
            "cast(null as varchar) as target_column, cast(null as integer) as top_k, "
            """'{"entity": "customers", "aggregate": {"fn": "SUM", "end": 2, "unit": "days"}}' """
            "as definition"
        )
        # the graph the warehouse aggregates read: each anchor's customer placed an order the
        # day before, of an amount that is its label (queries: random), known at once
        rng = np.random.default_rng(0)
        amounts = [*labels.astype(float), *rng.integers(0, 2, len(q_keys)).astype(float)]
        orders = pa.table(
            {
                "order_id": pa.array(range(len(amounts)), pa.int64()),
                "customer_id": anchors["entity_id"],
                "ordered_at": pa.array(
                    [k[1] - dt.timedelta(days=1) for k in ctx_keys + q_keys], pa.timestamp("us")
                ),
                "amount": pa.array(amounts),
            }
        )
        customers = pa.table({"customer_id": sorted(set(anchors["entity_id"].to_pylist()))})
        spec = pa.Table.from_pylist(GRAPH.to_rows())
        for name, table in (("rfm_anchors", anchors), ("rfm_labels", lab), ("rfm_cells", cells),
                            ("orders", orders), ("customers", customers),
                            ("rfm_graph_spec", spec)):  # fmt: skip
            con.register("src", table)
            con.execute(f"create table {name} as select * from src")
            con.unregister("src")
    return path


def _arrays(data):
    ctx, labels, _ = data
    keys = anchors_of(ctx)
    tokens = tokenize(ctx, keys, small_net_config().tokenizer())
    times = np.array([int(k[1].timestamp() * 1e6) for k in keys], np.int64)
    train, val = split_by_time(times, 0.2)
    return tokens, labels.astype(float), times, train, val


def test_split_is_by_time_and_keeps_equal_times_together():
    rng = np.random.default_rng(0)
    times = rng.integers(0, 30, size=500) * 86_400_000_000
    train, val = split_by_time(times, 0.2)
    assert len(train) + len(val) == 500 and not set(train) & set(val)
    assert times[train].max() < times[val].min()
    assert 0.1 < len(val) / 500 <= 0.2
    # the latest time alone holds 60% of the anchors: it is still the validation part
    skewed = np.r_[np.zeros(40), np.ones(60)].astype(np.int64)
    train, val = split_by_time(skewed, 0.2)
    assert len(val) == 60 and len(train) == 40
    with pytest.raises(RfmError, match="distinct"):
        split_by_time(np.full(10, 7, np.int64), 0.2)
    # in time order both sides are one run each: the command takes views, not copies
    train, val = split_by_time(np.sort(times), 0.2)
    assert as_slice(train) == slice(0, len(train))
    assert as_slice(val) == slice(len(train), 500)
    assert as_slice(np.array([0, 2, 3])).tolist() == [0, 2, 3]


def test_validation_episode_copies_only_its_context_and_queries(data, monkeypatch):
    tokens, labels, times, train, val = _arrays(data)
    episodes = []
    real = loop.validate

    def spy(encoder, head, task, ctx, *args):
        episodes.append((task, ctx))
        return real(encoder, head, task, ctx, *args)

    monkeypatch.setattr(loop, "validate", spy)
    encoder, head = build_net(small_net_config(), seed=0)
    cfg = FinetuneConfig(max_steps=2, eval_every=1, context_size=16, val_queries=8, threads=1)
    finetune_arrays(encoder, head, tokens.take(train), labels[train].tolist(), times[train],
                    tokens.take(val), labels[val].tolist(), times[val], "binary", cfg,
                    train_known=times[train] + DAY_US)  # fmt: skip
    task, ctx = episodes[0]
    assert all(t is task for t, _ in episodes)  # one fixed episode
    assert len(task.labels) == 16 + 8 and ctx.tolist() == list(range(16))
    context_us = np.asarray(task.anchor_us)[ctx]
    assert context_us.max() + DAY_US <= times[val].min()  # known by the first validation time


def test_finetune_lowers_validation_loss(data):
    tokens, labels, times, train, val = _arrays(data)
    encoder, head = build_net(small_net_config(), seed=0)
    lines: list[str] = []
    res = finetune_arrays(
        encoder,
        head,
        tokens.take(train),
        labels[train].tolist(),
        times[train],
        tokens.take(val),
        labels[val].tolist(),
        times[val],
        "binary",
        FAST,
        echo=lines.append,
    )
    assert res.best_step > 0
    assert res.after["val_loss"] < res.before["val_loss"] - 0.02
    assert res.metric == "auroc" and res.after["auroc"] is not None
    assert len(lines) == len(res.history) and "val_loss" in lines[-1]
    assert not encoder.training and not head.training


def test_training_episodes_never_see_validation_anchors(data, monkeypatch):
    tokens, labels, times, train, val = _arrays(data)
    seen: list[np.ndarray] = []
    real = loop.episode_loss

    cuts: list[int] = []

    def spy(encoder, head, t, *args, pools):
        seen.append(np.asarray(t.anchor_us))
        ctx, q = (np.asarray(t.anchor_us)[p] for p in pools)
        # the context is the queries' past, each label known (a day after its anchor) by then
        assert len(ctx) and len(q) and ctx.max() + DAY_US <= q.min()
        cuts.append(int(q.min()))
        return real(encoder, head, t, *args, pools=pools)

    monkeypatch.setattr(loop, "episode_loss", spy)
    encoder, head = build_net(small_net_config(), seed=0)
    cfg = FinetuneConfig(max_steps=6, eval_every=3, patience=5, context_size=32, threads=1)
    args = (tokens.take(train), labels[train].tolist(), times[train])
    finetune_arrays(encoder, head, *args, tokens.take(val), labels[val].tolist(), times[val],
                    "binary", cfg, train_known=times[train] + DAY_US)  # fmt: skip
    assert len(seen) == 6 and len(set(cuts)) > 1
    for t_us in seen:
        assert len(t_us) == len(train) and t_us.max() < times[val].min()
    with pytest.raises(RfmError, match="too little time"):
        late = times[train] + 30 * DAY_US  # no label known before the last training day
        finetune_arrays(encoder, head, *args, tokens.take(val), labels[val].tolist(),
                        times[val], "binary", cfg, train_known=late)  # fmt: skip
    with pytest.raises(RfmError, match="later than every training"):
        finetune_arrays(encoder, head, *args, tokens.take(train), labels[train].tolist(),
                        times[train], "binary", cfg)  # fmt: skip


def test_episode_cuts_need_a_labelled_past_and_a_future():
    times = np.repeat(np.arange(6), 10) * DAY_US  # ten anchors on each of six days
    # labels known two days after their anchor: a cut on day d has 10 * (d - 1) ready
    cuts = loop.episode_cuts(times, times + 2 * DAY_US, min_context=20, min_queries=20)
    assert (cuts // DAY_US).tolist() == [3, 4]
    # known at the anchor: ready strictly before it (times + 1 us)
    cuts = loop.episode_cuts(times, times + 1, min_context=10, min_queries=10)
    assert (cuts // DAY_US).tolist() == [1, 2, 3, 4, 5]


def test_label_known_reads_the_targets_window(warehouse):
    from dbt_rfm.finetune.warehouse import label_known

    anchors = np.array([0, DAY_US], np.int64)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert label_known(con, "main", "big_spender", anchors).tolist() == [
            2 * DAY_US,
            3 * DAY_US,
        ]
    with duckdb.connect(":memory:") as con:
        con.execute(
            "create table rfm_targets as select 's' as target_name, "
            """'{"aggregate": null, "static": "late"}' as definition"""
        )
        assert label_known(con, "main", "s", anchors) is None


def test_command_writes_artifact_that_scores(warehouse, base, tmp_path):
    out = tmp_path / "ft"
    run = run_finetune("big_spender", warehouse, out, base=base, config=FAST, echo=lambda _: None)
    assert run.report_path == out / f"{run.artifact.name}.finetune.json"
    report = json.loads(run.report_path.read_text())
    # the tree head was fitted and compared on validation, and written only when it was better
    assert report["trees"]["metric"] == "auroc"
    assert report["trees"]["kept"] == (report["trees"]["trees"] > report["trees"]["net"])
    files = [".encoder.onnx", ".icl_head.onnx", ".finetune.json"]
    files += [".trees.onnx"] if report["trees"]["kept"] else []
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{run.artifact.name}{s}" for s in files
    )  # nothing else left behind (temporary files renamed or removed)
    assert report["trees"]["n_val"] == report["n_val"]
    assert report["artifact"] == str(run.artifact)
    assert report["target"] == "big_spender" and report["base"] == str(base)
    assert report["after"]["val_loss"] <= report["before"]["val_loss"]
    assert report["n_train"] + report["n_val"] == N_LABELLED
    assert run.artifact.name.startswith("big_spender-") and len(run.artifact.name) == 20
    rfm = RfmSession.open(run.artifact)
    assert rfm.contract.net["finetune"]["target"] == "big_spender"
    assert rfm.contract.net["finetune"]["base"] == str(base)
    assert report["best_step"] > 0  # fine-tuned weights were kept, not the base's
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = ("rfm_targets", "rfm_anchors", "rfm_labels", "rfm_cells")
        inputs = ScoringInputs(
            *(con.table(n) for n in names), graph_spec=con.table("rfm_graph_spec")
        )
        got = predictions(con, inputs, settings={"artifact": str(run.artifact)}).read_all()
    assert got.num_rows == N_QUERY
    assert set(got["model_version"].to_pylist()) == {rfm.model_version}
    probs = np.array(got["probability"].to_pylist())
    assert ((probs >= 0) & (probs <= 1)).all() and probs.std() > 0


def test_tree_head_reads_the_warehouse_aggregates(warehouse, base, tmp_path):
    """Decision 0020: the trees read the aggregates of the declared graph (here the amount of
    the order placed the day before, which is the label), and scoring computes them again
    for the query anchors, in the warehouse."""
    run = run_finetune("big_spender", warehouse, tmp_path / "ft", base=base, config=FAST,
                       echo=lambda _: None)  # fmt: skip
    trees = run.report["trees"]
    assert trees["kept"] and trees["trees"] > 0.99
    assert trees["top_features"][0].startswith("readout:agg:customers<-orders.customer_id:")
    rfm = RfmSession.open(run.artifact)
    assert rfm.trees is not None
    assert "agg:customers<-orders.customer_id:amount_last" in rfm.trees.spec.readout
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = ("rfm_targets", "rfm_anchors", "rfm_labels", "rfm_cells")
        settings = {"artifact": str(run.artifact)}
        inputs = ScoringInputs(*(con.table(n) for n in names))
        with pytest.raises(RfmError, match="graph_spec=dbt.ref"):
            predictions(con, inputs, settings=settings).read_all()
        inputs = ScoringInputs(
            *(con.table(n) for n in names), graph_spec=con.table("rfm_graph_spec")
        )
        got = predictions(con, inputs, settings=settings).read_all()
        amount = dict(
            con.sql(
                "select a.entity_id, o.amount from rfm_anchors a join orders o "
                "on o.customer_id = a.entity_id where a.role = 'query'"
            ).fetchall()
        )
    probs = np.array(got["probability"].to_pylist())
    truth = np.array([amount[e] for e in got["entity_id"].to_pylist()])
    assert probs[truth == 1].min() > probs[truth == 0].max()  # the query's own amounts
    off = run_finetune("big_spender", warehouse, tmp_path / "off", base=base,
                       config=FinetuneConfig(**{**FAST.to_dict(), "aggregates": False}),
                       echo=lambda _: None)  # fmt: skip
    assert not any("agg:" in f for f in off.report["trees"]["top_features"])


def test_the_pretrained_net_with_its_trees_is_kept_when_better(
    warehouse, base, tmp_path, monkeypatch
):
    """Decision 0018: the tree head is fitted on the fine-tuned and on the pretrained net, and
    the pretrained net with its own trees is written when it wins on validation (forced here);
    its tree head is stamped for the written net, so scoring uses it."""
    from dbt_rfm.finetune import trees as tree_mod
    from dbt_rfm.nn.export import export_artifact
    from dbt_rfm.nn.train import load_checkpoint

    compared = []

    def prefer(tuned, pretrained, task):
        compared.append((tuned.report, pretrained.report, task))
        return True

    monkeypatch.setattr(tree_mod, "prefer_base", prefer)
    lines: list[str] = []
    run = run_finetune("big_spender", warehouse, tmp_path / "ft", base=base, config=FAST,
                       echo=lines.append)  # fmt: skip
    report = run.report
    assert compared and compared[0][2] == "binary" and report["best_step"] > 0
    assert report["kept_pretrained"] and report["trees"] == compared[0][1]
    assert report["pretrained_trees"] == compared[0][1]
    assert any("kept instead" in line for line in lines)
    rfm = RfmSession.open(run.artifact)
    assert rfm.contract.net["finetune"]["best_step"] == 0
    export_artifact(*load_checkpoint(base)[:2], tmp_path / "base" / "b")
    weights = [_weights(tmp_path / "base" / "b.encoder.onnx"), _weights(run.artifact)]
    assert weights[0].keys() == weights[1].keys()
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])  # the base's
    if report["trees"]["kept"]:
        assert rfm.trees is not None  # stamped for this net: the session accepts it


def _weights(path) -> dict[str, np.ndarray]:
    """The initializers of an encoder file (or of ``<prefix>.encoder.onnx``) by name."""
    import onnx
    from onnx import numpy_helper

    path = str(path) if str(path).endswith(".onnx") else f"{path}.encoder.onnx"
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def prefer_case(kept: bool, net: float, trees: float) -> TreeFit:
    report = {"metric": "m", "net": net, "trees": trees, "kept": kept}
    return TreeFit(None, None, report)


def test_prefer_base_compares_what_each_artifact_serves():
    tuned = prefer_case(True, 0.70, 0.74)  # serves its trees: 0.74
    assert prefer_base(tuned, prefer_case(False, 0.75, 0.72), "binary")  # serves its net: 0.75
    assert not prefer_base(tuned, prefer_case(True, 0.70, 0.73), "binary")
    assert not prefer_base(tuned, prefer_case(True, 0.70, 0.74), "binary")  # a tie: fine-tuned
    assert prefer_base(prefer_case(True, 4.0, 3.5), prefer_case(True, 4.0, 3.4), "regression")
    skipped = TreeFit(None, None, {"skipped": "too few anchors"})
    assert not prefer_base(tuned, skipped, "binary") and not prefer_base(skipped, tuned, "binary")


def test_failed_export_leaves_no_file(base, tmp_path, monkeypatch):
    from dbt_rfm.finetune import artifact
    from dbt_rfm.nn.train import load_checkpoint

    def half_export(encoder, head, prefix):
        path = artifact.artifact_paths(prefix)[0]
        path.write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(artifact, "export_artifact", half_export)
    encoder, head, _ = load_checkpoint(base)
    with pytest.raises(OSError, match="disk full"):
        artifact.write_artifact(encoder, head, tmp_path, "t", {})
    assert list(tmp_path.iterdir()) == []


def test_failed_rename_leaves_no_half_pair(base, tmp_path, monkeypatch):
    from dbt_rfm.finetune import artifact
    from dbt_rfm.nn.train import load_checkpoint

    encoder, head, _ = load_checkpoint(base)
    calls = []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        os.rename(src, dst)

    monkeypatch.setattr(artifact.os, "replace", second_fails)
    with pytest.raises(OSError, match="disk full"):
        artifact.write_artifact(encoder, head, tmp_path, "t", {})
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    # a same-hash pair already in place is never removed by a failure
    prefix = artifact.write_artifact(encoder, head, tmp_path, "t", {})
    before = sorted(tmp_path.iterdir())
    calls.clear()
    monkeypatch.setattr(artifact.os, "replace", second_fails)
    with pytest.raises(OSError, match="disk full"):
        artifact.write_artifact(encoder, head, tmp_path, "t", {})
    assert sorted(tmp_path.iterdir()) == before == sorted(artifact.artifact_paths(prefix))


def test_tree_head_is_written_and_hashed_with_the_net(base, tmp_path):
    from dbt_rfm.finetune import artifact
    from dbt_rfm.nn.train import load_checkpoint

    encoder, head, _ = load_checkpoint(base)
    seen = []

    def trees(net):
        seen.append(RfmSession.open(net).model_version)  # the net is complete when asked
        return b"trees"

    plain = artifact.write_artifact(encoder, head, tmp_path, "t", {})
    with_trees = artifact.write_artifact(encoder, head, tmp_path, "t", {}, trees=trees)
    assert with_trees != plain and seen
    assert (tmp_path / f"{with_trees.name}.trees.onnx").read_bytes() == b"trees"

    def fails(net):
        raise RfmError("no trees")

    before = sorted(tmp_path.iterdir())
    with pytest.raises(RfmError, match="no trees"):
        artifact.write_artifact(encoder, head, tmp_path, "u", {}, trees=fails)
    assert sorted(tmp_path.iterdir()) == before


def test_no_trees_flag_skips_the_tree_head(warehouse, base, tmp_path):
    config = FinetuneConfig(**{**FAST.to_dict(), "max_steps": 0, "trees": False})
    run = run_finetune("big_spender", warehouse, tmp_path, base=base, config=config)
    assert run.report["trees"] is None and run.report["best_step"] == 0
    assert not list(tmp_path.glob("*.trees.onnx"))


def test_unknown_target_suggests_the_declared_one(warehouse, base, tmp_path):
    with pytest.raises(RfmError, match="did you mean 'big_spender'"):
        run_finetune("big_spendr", warehouse, tmp_path, base=base, config=FAST)


def test_missing_tables_and_files_are_clear_errors(tmp_path, base, warehouse):
    path = tmp_path / "empty.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create table rfm_targets as select 1 as x")
    with pytest.raises(RfmError, match="rfm_anchors, rfm_cells, rfm_labels.*dbt build"):
        run_finetune("t", path, tmp_path / "o", base=base)
    with pytest.raises(RfmError, match="no DuckDB file"):
        run_finetune("t", tmp_path / "nope.duckdb", tmp_path / "o", base=base)
    with pytest.raises(RfmError, match="no base checkpoint"):
        run_finetune("big_spender", warehouse, tmp_path / "o", base=tmp_path / "none.pt")


def test_cli_prints_artifact_and_score_command(warehouse, base, tmp_path, capsys):
    argv = ["finetune", "--target", "big_spender", "--duckdb", str(warehouse), "--base",
            str(base), "--out", str(tmp_path), "--max-steps", "4", "--patience", "1",
            "--eval-every", "2", "--lr", "0.002", "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "artifact: " in out and "RFM_ARTIFACT=" in out and "--select rfm_predictions" in out
    (report_file,) = tmp_path.glob("big_spender-*.finetune.json")
    assert f"report: {report_file}" in out
    report = json.loads(report_file.read_text())
    assert report["config"]["lr"] == 0.002 and report["config"]["max_steps"] == 4
    assert main([*argv[:2], "nope", *argv[3:]]) == 2
    assert "has no target 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["regression", "multiclass", "ranking"])
def test_other_tasks_run_and_report_their_metric(data, task):
    tokens, binary, times, train, val = _arrays(data)
    rng = np.random.default_rng(1)
    if task == "regression":
        labels = list(binary * 10 + rng.normal(size=len(binary)))
    elif task == "multiclass":
        labels = [("low", "high")[int(b)] if rng.random() < 0.9 else "mid" for b in binary]
    else:
        labels = [["p1", "p2"] if b else ["p3"] for b in binary]
    encoder, head = build_net(small_net_config(), seed=0)
    cfg = FinetuneConfig(max_steps=4, eval_every=2, patience=2, context_size=32, threads=1)
    res = finetune_arrays(encoder, head, tokens.take(train), [labels[i] for i in train],
                          times[train], tokens.take(val), [labels[i] for i in val], times[val],
                          task, cfg, top_k=2)  # fmt: skip
    assert res.metric == loop.METRICS[task]
    assert res.before["val_loss"] is not None and res.before[res.metric] is not None
    assert res.after["val_loss"] <= res.before["val_loss"]


def test_context_size_and_max_anchors_flags_reach_the_config() -> None:
    import argparse

    from dbt_rfm.finetune.command import add_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--target", "t", "--duckdb", "x", "--out", "o"])
    assert config_from_args(args) == FinetuneConfig()
    base = ["--target", "t", "--duckdb", "x", "--out", "o"]
    args = parser.parse_args([*base, "--context-size", "256", "--max-anchors", "5000"])
    config = config_from_args(args)
    assert (config.context_size, config.max_anchors) == (256, 5000)
