"""The tree head: fitted by fine-tuning on entity columns, embedding and the net's prediction;
read back by the session and applied by scoring to its own target only."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

pytest.importorskip("torch")
pytest.importorskip("lightgbm")
pytest.importorskip("onnxmltools")

from rfm_runtime.errors import RfmError  # noqa: E402
from rfm_runtime.history import HISTORY_TERMS  # noqa: E402
from rfm_runtime.schema import TARGET_HISTORY  # noqa: E402
from rfm_runtime.score import score  # noqa: E402
from rfm_runtime.session import RfmSession  # noqa: E402
from rfm_runtime.tokenize import tokenize  # noqa: E402
from rfm_runtime.trees import TREES_SUFFIX, WINDOW_STATS, TreeSpec, name_labels  # noqa: E402
from rfm_synthetic import T0, anchors_of, export_small, label_table, make_cells  # noqa: E402

from dbt_rfm.finetune.config import FinetuneConfig  # noqa: E402
from dbt_rfm.finetune.trees import fit_trees  # noqa: E402
from dbt_rfm.pretrain.evaluate import auroc  # noqa: E402

N = 800
DAY_US = 86_400_000_000


def _data():
    """Cells of N customers, 10 a day; the label is a function of two customer columns (an
    older customer of segment ``a``), which the small random net does not know."""
    cells, _ = make_cells(N, seed=5)
    index = pc.cast(pc.utf8_slice_codeunits(cells["entity_id"], 1), pa.int64()).to_numpy()
    times = pa.array([T0 + dt.timedelta(days=int(i) // 10) for i in index], pa.timestamp("us"))
    cells = cells.set_column(1, "anchor_time", times)
    rows = {}
    for r in cells.filter(pc.equal(cells["hop"], 0)).to_pylist():
        rows.setdefault(r["entity_id"], {})[r["column_name"]] = r["num_value"] or r["text_value"]
    keys = anchors_of(cells)
    y = np.array([float(rows[e]["segment"] == "a" and rows[e]["age"] > 45) for e, _ in keys])
    return cells, keys, y


CELLS, KEYS, Y = _data()


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("art") / "small"
    export_small(prefix, seed=7)
    return prefix


@pytest.fixture(scope="module")
def fitted(artifact):
    session = RfmSession.open(artifact)
    config = session.tokenizer_config(64)
    tokens = tokenize(CELLS, KEYS, config)
    anchors = pa.table(
        {"entity_id": [e for e, _ in KEYS], "anchor_time": [t for _, t in KEYS]},
    ).cast(pa.schema([("entity_id", pa.string()), ("anchor_time", pa.timestamp("us"))]))
    times = anchors["anchor_time"].cast(pa.int64()).to_numpy()
    train = np.flatnonzero(times < np.quantile(times, 0.8))
    val = np.flatnonzero(times >= np.quantile(times, 0.8))
    names = name_labels(
        (
            "age",
            "segment",
            "active",
            "signup",
            "customers",
            "orders",
            "amount",
            "products",
            "price",
        ),
        config,
    )
    fit = fit_trees(
        session, "binary", "older_a", tokens, anchors, list(Y), times + DAY_US, train, val,
        column_names=names, seed=0, threads=1,
    )  # fmt: skip
    return session, tokens, fit


def test_fit_learns_the_entity_columns_and_beats_the_net(fitted) -> None:
    _, _, fit = fitted
    r = fit.report
    assert r["kept"] and fit.onnx is not None
    assert r["trees"] > 0.95 and r["trees"] > r["net"] + 0.05
    assert {"age", "segment"} <= set(r["top_features"][:3])
    assert TreeSpec.from_json(fit.spec.to_json()) == fit.spec


def test_features_read_the_entity_row(fitted) -> None:
    session, tokens, fit = fitted
    spec = fit.spec
    labels = [c.label for c in spec.columns]
    assert set(labels) == {"age", "segment", "active", "signup"}
    x = spec.features(tokens, np.zeros((tokens.num_anchors, spec.embedding_dim)), np.full(N, 0.3))
    segment = x[:, labels.index("segment")]
    rows = CELLS.filter(
        pc.and_(pc.equal(CELLS["hop"], 0), pc.equal(CELLS["column_name"], "segment"))
    )
    text = dict(zip(rows["entity_id"].to_pylist(), rows["text_value"].to_pylist(), strict=True))
    seg = np.array([text[e] for e, _ in KEYS])
    # one code per category, the same for every anchor of it
    assert len(set(segment[seg == "a"])) == 1 and len(set(segment[seg == "b"])) == 1
    assert segment[seg == "a"][0] != segment[seg == "b"][0]
    assert np.all(x[:, -1] == np.float32(0.3))
    assert not np.isnan(x[:, labels.index("age")]).any()


def test_features_aggregate_the_linked_rows(fitted) -> None:
    """A linked column gives the mean over the anchor's sampled rows and the value of the most
    recent one; an anchor without such rows has neither."""
    _, tokens, fit = fitted
    spec = fit.spec
    assert {"customers>orders.amount@1", "orders>products.price@2"} <= {
        c.label for c in spec.linked
    }
    names = spec.names()
    x = spec.features(tokens, np.zeros((N, spec.embedding_dim)), np.zeros(N))
    mean = x[:, names.index("customers>orders.amount@1:mean")]
    last = x[:, names.index("customers>orders.amount@1:last")]
    amounts = CELLS.filter(
        pc.and_(pc.equal(CELLS["table_name"], "orders"), pc.equal(CELLS["column_name"], "amount"))
    )
    orders: dict[str, list[tuple[float, float]]] = {}
    for r in amounts.to_pylist():
        orders.setdefault(r["entity_id"], []).append((r["rel_days"], r["num_value"]))
    n = np.array([len(orders.get(e, ())) for e, _ in KEYS])
    assert 0 < (n == 0).sum() < N and (n > 1).sum() > N / 2
    assert np.isnan(mean[n == 0]).all() and np.isnan(last[n == 0]).all()
    assert np.array_equal(mean[n == 1], last[n == 1]) and not np.allclose(mean[n > 1], last[n > 1])
    # the most recent order's encoded amount sorts the anchors as its raw amount does
    recent = np.array([max(orders[e])[1] for e, _ in KEYS if e in orders])
    assert np.all(np.diff(last[n > 0][np.argsort(recent)]) >= 0)
    # windowed means and sums (decision 0016): over the rows of the last w days only
    assert spec.windows
    cut = 0
    for w in spec.windows:
        within = np.array([sum(d >= -w for d, _ in orders.get(e, ())) for e, _ in KEYS])
        cut += int((within < n).sum())
        windowed = x[:, names.index(f"customers>orders.amount@1:mean_{w:g}d")]
        total = x[:, names.index(f"customers>orders.amount@1:sum_{w:g}d")]
        assert np.isnan(windowed[within == 0]).all() and not np.isnan(windowed[within > 0]).any()
        assert np.allclose(total, np.nan_to_num(windowed) * within, atol=1e-4)
        every = (within == n) & (n > 0)
        assert np.allclose(windowed[every], mean[every])
        one = (within == 1) & (n > 1)  # the one row in the window is the most recent
        assert np.allclose(windowed[one], last[one])
    assert cut > 0  # some window leaves rows out


def test_a_spec_without_linked_columns_or_windows_still_reads(fitted) -> None:
    spec = fitted[2].spec
    raw = json.loads(spec.to_json())
    del raw["windows"]
    old = TreeSpec.from_json(json.dumps(raw))
    windowed = len(WINDOW_STATS) * len(spec.windows) * len(spec.linked)
    assert old.windows == () and old.width == spec.width - windowed
    del raw["linked"]
    old = TreeSpec.from_json(json.dumps(raw))
    assert old.linked == () and old.width == spec.width - len(spec.stats) * len(spec.linked)


def test_the_trees_read_the_readouts_inputs(artifact, tmp_path) -> None:
    """A regression target that is a step in its own history: the readout's linear term cannot
    follow it; the trees read the history from the readout's inputs, in fitting and scoring."""
    session = RfmSession.open(artifact)
    tokens = tokenize(CELLS, KEYS, session.tokenizer_config(64))
    rng = np.random.default_rng(3)
    past = rng.gamma(2.0, 2.0, size=(N, len(HISTORY_TERMS)))
    y = np.where(past[:, 0] > np.median(past[:, 0]), 10.0, 0.0)
    history = pa.table(
        {"entity_id": [e for e, _ in KEYS], "anchor_time": [t for _, t in KEYS]}
        | {t: past[:, j] for j, t in enumerate(HISTORY_TERMS)},
        schema=TARGET_HISTORY,
    )
    anchors = history.select(["entity_id", "anchor_time"])
    times = anchors["anchor_time"].cast(pa.int64()).to_numpy()
    train, val = np.flatnonzero(times < times[600]), np.flatnonzero(times >= times[600])
    fit = fit_trees(session, "regression", "step", tokens, anchors, list(y), times + DAY_US,
                    train, val, history=history, seed=0, threads=1)  # fmt: skip
    assert fit.spec.readout == tuple(sorted(HISTORY_TERMS))
    assert fit.report["kept"] and fit.report["top_features"][0] == "readout:per_window_1"
    tuned = _with_trees(artifact, fit.onnx, tmp_path)
    context = CELLS.filter(pc.is_in(CELLS["entity_id"], pa.array([e for e, _ in KEYS[:600]])))
    ctx_labels = label_table(context, y[:600])

    def mae(s: RfmSession) -> float:
        batches = score(s, context.to_batches(), ctx_labels, CELLS.to_batches(), "regression",
                        "step", history=history)  # fmt: skip
        out = pa.Table.from_batches(list(batches))
        return float(np.mean(np.abs(out["prediction"].to_numpy() - y)))

    assert mae(tuned) < min(1.0, mae(session) / 2)


def _with_trees(artifact, trees: bytes, folder) -> RfmSession:
    """A copy of ``artifact`` in ``folder`` with the tree head beside it, opened."""
    prefix = folder / "ft"
    for suffix in (".encoder.onnx", ".icl_head.onnx"):
        shutil.copy(f"{artifact}{suffix}", f"{prefix}{suffix}")
    prefix.with_name(prefix.name + TREES_SUFFIX).write_bytes(trees)
    return RfmSession.open(prefix)


def test_scoring_applies_the_trees_to_their_target_only(fitted, tmp_path, artifact, capsys) -> None:
    session, tokens, fit = fitted
    tuned = _with_trees(artifact, fit.onnx, tmp_path)
    assert tuned.trees is not None and tuned.model_version != session.model_version
    first = pa.array([e for e, _ in KEYS[:600]])
    context, queries = CELLS.filter(pc.is_in(CELLS["entity_id"], first)), CELLS
    ctx_labels = label_table(context, Y[:600].astype(np.int64))

    def run(s: RfmSession, name: str) -> np.ndarray:
        batches = score(s, context.to_batches(), ctx_labels, queries.to_batches(), "binary",
                        name, echo=True)  # fmt: skip
        return pa.Table.from_batches(list(batches))["probability"].to_numpy()

    with_trees, other = run(tuned, "older_a"), run(tuned, "another_target")
    printed = capsys.readouterr().out
    assert f"older_a: tree head ft.trees.onnx ({fit.spec.width} features)" in printed
    assert "another_target is scored by the net alone" in printed
    net = run(session, "older_a")
    assert np.array_equal(other, net)
    assert auroc(Y, with_trees) > max(0.95, auroc(Y, net) + 0.05)


def test_a_tree_head_of_another_net_is_refused(fitted, tmp_path) -> None:
    _, _, fit = fitted
    prefix = tmp_path / "other"
    export_small(prefix, seed=8)
    prefix.with_name(prefix.name + TREES_SUFFIX).write_bytes(fit.onnx)
    with pytest.raises(RfmError, match="fitted on net"):
        RfmSession.open(prefix)


def test_a_tree_head_for_another_task_is_refused(fitted, tmp_path, artifact) -> None:
    _, _, fit = fitted
    tuned = _with_trees(artifact, fit.onnx, tmp_path)
    labels = label_table(CELLS, Y.astype(np.int64))
    with pytest.raises(RfmError, match="fitted for a binary target"):
        list(score(tuned, CELLS.to_batches(), labels, CELLS.to_batches(), "regression", "older_a"))


def test_zero_steps_is_a_valid_config_and_negative_is_not() -> None:
    assert FinetuneConfig(max_steps=0).max_steps == 0
    with pytest.raises(Exception, match="max_steps must be >= 0"):
        FinetuneConfig(max_steps=-1)


def test_too_few_anchors_skip_the_tree_head(fitted) -> None:
    session, tokens, _ = fitted
    few = np.arange(120)
    anchors = label_table(CELLS, Y).select(["entity_id", "anchor_time"]).take(few)
    times = anchors["anchor_time"].cast(pa.int64()).to_numpy()
    fit = fit_trees(session, "binary", "older_a", tokens.take(few), anchors, list(Y[few]),
                    times + DAY_US, few[:100], few[100:])  # fmt: skip
    assert fit.onnx is None and fit.spec is None
    assert "needs 100" in fit.report["skipped"] and fit.report["n_train"] < 100


def test_the_leaves_are_chosen_on_validation(fitted, monkeypatch) -> None:
    """Exclusive or of two entity columns: stumps (2 leaves) cannot learn it, 15-leaf trees
    can; the first setting tried is the stump, so keeping it would fail."""
    import dbt_rfm.finetune.trees as trees

    session, tokens, _ = fitted
    monkeypatch.setattr(trees, "LEAVES", (2, 15))
    row = {(r["entity_id"], r["column_name"]): r for r in CELLS.to_pylist() if r["hop"] == 0}
    y = [float((row[e, "segment"]["text_value"] == "a") != (row[e, "age"]["num_value"] > 45))
         for e, _ in KEYS]  # fmt: skip
    anchors = label_table(CELLS, Y).select(["entity_id", "anchor_time"])
    times = anchors["anchor_time"].cast(pa.int64()).to_numpy()
    train, val = np.flatnonzero(times < times[600]), np.flatnonzero(times >= times[600])
    fit = trees.fit_trees(session, "binary", "xor", tokens, anchors, y, times + DAY_US, train,
                          val, seed=0, threads=1)  # fmt: skip
    assert fit.report["leaves"] == 15 and fit.report["trees"] > 0.95


def test_a_ranking_tree_head_reranks_the_candidates(fitted, artifact, tmp_path) -> None:
    """Each customer's list holds one of four items, chosen by two of its columns: the
    readout (no item history, a random net) cannot tell them apart, the trees can (item code
    against the columns); scoring then ranks by the trees."""
    session, tokens, _ = fitted
    row = {(r["entity_id"], r["column_name"]): r for r in CELLS.to_pylist() if r["hop"] == 0}
    lists = [["ab"[row[e, "segment"]["text_value"] == "a"] + "yo"[row[e, "age"]["num_value"] > 45]]
             for e, _ in KEYS]  # fmt: skip
    anchors = label_table(CELLS, Y).select(["entity_id", "anchor_time"])
    times = anchors["anchor_time"].cast(pa.int64()).to_numpy()
    train, val = np.flatnonzero(times < times[600]), np.flatnonzero(times >= times[600])
    fit = fit_trees(session, "ranking", "next_item", tokens, anchors, lists, times + DAY_US,
                    train, val, seed=0, threads=1)  # fmt: skip
    r = fit.report
    assert r["metric"] == "map@5" and r["kept"] and r["trees"] > 0.95 > r["net"] + 0.2
    assert set(fit.spec.items) == {"ay", "ao", "by", "bo"} and fit.spec.embedding_dim == 0
    assert fit.spec.names()[-1] == "item" and fit.spec.categorical()[-1] == fit.spec.width - 1
    assert TreeSpec.from_json(fit.spec.to_json()) == fit.spec

    tuned = _with_trees(artifact, fit.onnx, tmp_path)
    context = CELLS.filter(pc.is_in(CELLS["entity_id"], pa.array([e for e, _ in KEYS[:600]])))
    ctx_labels = label_table(context, Y[:600]).set_column(
        2, "label", pa.array(lists[:600], pa.list_(pa.string()))
    )

    def hits(s: RfmSession) -> float:
        batches = score(s, context.to_batches(), ctx_labels, CELLS.to_batches(), "ranking",
                        "next_item", top_k=2)  # fmt: skip
        out = pa.Table.from_batches(list(batches))
        assert all(len(v) == 2 for v in out["class_scores"].to_pylist())
        ids, top = out["entity_id"].to_pylist(), out["predicted_class"].to_pylist()
        best = dict(zip(ids, top, strict=True))
        return float(np.mean([best[e] == lists[i][0] for i, (e, _) in enumerate(KEYS[600:], 600)]))

    assert hits(tuned) > 0.95 > hits(session) + 0.2
