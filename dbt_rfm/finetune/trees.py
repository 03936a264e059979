"""Fit the tree head of a fine-tuned artifact (:mod:`rfm_runtime.trees`, decisions 0011, 0012
and 0015).

The trees learn the target from the entity row's own values, aggregates of its linked rows (of
the sampled ones, and of every one in the warehouse: decision 0020), the anchor embedding and
the net's prediction. The net's prediction of an anchor must come from a
context the net could have had at that anchor's time, as in scoring, or the trees would learn to
trust a prediction that saw its own label. So the training anchors are cut into :data:`CHUNKS`
runs in time order; each run is predicted from a context of the anchors whose label was known by
the run's first anchor time (the most recent ``max_context`` of them), by the net and its
readout exactly as :func:`rfm_runtime.score.fit_predictor` scores; the first run has no context
and is not learnt from. The validation anchors are predicted from the training anchors known by
the first validation anchor time. LightGBM (fixed, light settings) early-stops on the validation
anchors, and the trees are kept only when they beat the net alone on the validation metric
(AUROC for a binary target, MAE for a regression target, MAP@:data:`RANK_K` for a ranking
target): fine-tuning never makes the validation metric worse. A ranking target's trees learn
from (anchor, candidate) pairs, the readout's best :data:`rfm_runtime.trees.RERANK` candidates
of each anchor, labelled 1 when the item is in the anchor's list.

LightGBM and onnxmltools (the ``train`` extra) fit and convert the trees; scoring needs neither.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from rfm_runtime.labels import ContextLabels, Decoded, prepare_labels
from rfm_runtime.ranking import PAIR_INPUTS, RankingLabels, prepare_ranking
from rfm_runtime.score import fit_predictor
from rfm_runtime.session import RfmSession
from rfm_runtime.tokenize import TokenBatch, anchor_keys
from rfm_runtime.trees import (
    LINKED_WINDOWS_DAYS,
    RERANK,
    TREE_TASKS,
    TREES_INPUT,
    TREES_KEY,
    NamedInputs,
    TreeSpec,
    linked_columns,
    row_columns,
)

from dbt_rfm.errors import RfmError
from dbt_rfm.pretrain.evaluate import auroc, map_at_k

if TYPE_CHECKING:
    from dbt_rfm.nn.encoder import RelationalEncoder
    from dbt_rfm.nn.icl_head import ICLHead

    #: An encoder and its ICL head.
    Net = tuple[RelationalEncoder, ICLHead]

#: Runs in time order the training anchors are predicted in (the first has no context).
CHUNKS = 8
#: LightGBM's settings (the trees see at most ``max_anchors`` rows).
PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.5,
    "early_stopping_round": 50,  # rounds without a better validation score
    "deterministic": True,
    "verbose": -1,
}
#: A binary target's trees learn slower, more regularised, and stop early on AUROC, the
#: metric they are judged by, with a longer patience (decision 0019).
BINARY_PARAMS: dict[str, Any] = {
    "metric": "auc",
    "learning_rate": 0.02,
    "lambda_l2": 10.0,
    "early_stopping_round": 100,
}
#: Leaves per tree: each is fitted, the best on validation is kept (decision 0013).
LEAVES = (15, 63)
MAX_ROUNDS = 2000
#: Fewest training anchors with a net prediction the trees are fitted on (else none is).
MIN_ROWS = 100
#: Anchors embedded per encoder run.
BATCH = 256
#: A ranking tree head is judged by MAP at this k on validation.
RANK_K = 5


@dataclass(frozen=True)
class TreeFit:
    """A fitted tree head.

    Attributes:
        spec: what it reads and was fitted for (None when too few anchors had a prediction
            from an earlier context to fit on: then ``report["skipped"]`` says why).
        onnx: the converted model (spec in its metadata), or None when the trees were not
            fitted or did not beat the net alone on validation (then the artifact has no
            tree head).
        report: rounds, rows, validation metric of the net and of the trees, top features.
    """

    spec: TreeSpec | None
    onnx: bytes | None
    report: dict[str, Any]

    def for_net(self, prefix: Path) -> bytes | None:
        """The tree head to write beside the exported net ``prefix``: :attr:`onnx` with its
        spec's ``model_version`` set to that net's (the trees read only the net's outputs, which
        its contract's provenance does not change)."""
        if self.onnx is None or self.spec is None:
            return None
        import onnx

        model = onnx.load_from_string(self.onnx)
        spec = replace(self.spec, model_version=RfmSession.open(prefix).model_version)
        for entry in model.metadata_props:
            if entry.key == TREES_KEY:
                entry.value = spec.to_json()
        return bytes(model.SerializeToString())

    @property
    def score(self) -> float | None:
        """The validation metric of what the artifact serves: the trees when kept, else the
        net; None when the trees were skipped (no comparable figure)."""
        if "skipped" in self.report:
            return None
        return float(self.report["trees" if self.report["kept"] else "net"])


def prefer_base(tuned: TreeFit, base: TreeFit, task: str) -> bool:
    """Whether the pretrained net with its tree head scores better on validation than the
    fine-tuned one with its own (decision 0018); False when either has no score."""
    if tuned.score is None or base.score is None:
        return False
    sign = -1.0 if task == "regression" else 1.0  # MAE: lower is better
    return sign * (base.score - tuned.score) > 0


def choose_net(
    fit: Callable[[Net], TreeFit],
    tuned: Net,
    base: Callable[[], Net],
    step: int,
    task: str,
    say: Callable[[str], None],
) -> tuple[Net, TreeFit, int, TreeFit | None]:
    """Decision 0018: the tree head ``fit`` on the fine-tuned net ``tuned`` (its best step
    ``step``) and, when the steps changed it, on the pretrained net ``base()``; returns the net
    to write, its tree head, its step (0: the pretrained net) and the pretrained net's tree
    head when it was fitted."""
    fitted = fit(tuned)
    if step == 0:
        return tuned, fitted, step, None
    say("tree head on the pretrained net, to compare")
    pretrained = base()
    base_fit = fit(pretrained)
    if not prefer_base(fitted, base_fit, task):
        return tuned, fitted, step, base_fit
    say(
        f"the pretrained net with its tree head scores {base_fit.score:.4f} on validation "
        f"against {fitted.score:.4f} fine-tuned: kept instead"
    )
    return pretrained, base_fit, 0, base_fit


def embed_all(session: RfmSession, tokens: TokenBatch) -> np.ndarray:
    """``float32[A, d]`` embeddings of every anchor of ``tokens``."""
    parts = [
        session.encode(tokens.take(np.arange(s, min(s + BATCH, tokens.num_anchors))))
        for s in range(0, tokens.num_anchors, BATCH)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, session.embedding_dim), np.float32)


def net_predictions(
    session: RfmSession,
    task: str,
    embedding: np.ndarray,
    anchors: pa.Table,
    times: np.ndarray,
    labels: Sequence[Any],
    pool: np.ndarray,
    known_us: np.ndarray,
    queries: np.ndarray,
    at_us: int,
    history: pa.Table | None,
    max_context: int | None,
) -> Decoded | None:
    """The net's prediction of the anchors ``queries`` (after its readout, with the readout's
    inputs) from a context of the ``pool`` anchors known by ``at_us`` (the most recent by
    ``times``, the anchors' times in microseconds, at most ``max_context``); None when fewer
    than two pool anchors are known then."""
    ctx = pool[known_us[pool] <= at_us]
    ctx = ctx[np.argsort(times[ctx], kind="stable")]
    if max_context is not None:
        ctx = ctx[-max_context:]
    if len(ctx) < 2:
        return None
    values = [labels[i] for i in ctx]
    context_labels = anchors.take(pa.array(ctx)).append_column("label", pa.array(values))
    prepared: ContextLabels | RankingLabels = (
        prepare_ranking(values)
        if task == "ranking"
        else prepare_labels(task, values, session.contract.max_classes)
    )
    context = embedding[ctx][prepared.keep]
    predict = fit_predictor(session, task, context, prepared, context_labels, history)
    return predict(embedding[queries], anchor_keys(anchors.take(pa.array(queries))))


def fit_trees(
    session: RfmSession,
    task: str,
    target: str,
    tokens: TokenBatch,
    anchors: pa.Table,
    labels: Sequence[float],
    known_us: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    *,
    history: pa.Table | None = None,
    aggregates: NamedInputs | None = None,
    column_names: dict[tuple[int, ...], str] | None = None,
    max_context: int | None = None,
    seed: int = 0,
    threads: int | None = None,
    echo: Callable[[str], None] | None = None,
) -> TreeFit:
    """Fit the tree head of ``session``'s net on one target (module docstring).

    Args:
        session: the (fine-tuned) net, opened.
        task: ``binary`` or ``regression``; target: the target's name.
        tokens: tokens of every anchor; anchors: their ``entity_id, anchor_time``.
        labels: every anchor's label (binary 0/1, regression value).
        known_us: when each label became known, microseconds since the epoch.
        train, val: row indices of the training and validation anchors.
        history: the readout's history of the anchors (as scoring reads it), or None.
        aggregates: the warehouse aggregates of the anchors
            (:func:`dbt_rfm.aggregates.target_aggregates`), read beside the readout's inputs
            (a binary or regression target); or None.
        column_names: hashed table and column name ids -> name, for the report.
        max_context: most context anchors per prediction (None: every known one).
        seed: LightGBM's seed; threads: its threads (None: LightGBM's default).
        echo: receives progress lines.

    Raises:
        RfmError: for a task the trees do not predict.
    """
    import lightgbm as lgb

    if task not in TREE_TASKS:
        raise RfmError(
            f"finetune: target '{target}': the tree head predicts {TREE_TASKS}, not {task}"
        )
    say = echo or (lambda _line: None)
    start = time.monotonic()
    embedding = embed_all(session, tokens)
    times = np.asarray(anchors.column("anchor_time").cast(pa.int64()).to_numpy())
    order = train[np.argsort(times[train], kind="stable")]
    runs: list[tuple[np.ndarray, Decoded]] = []
    for run in [*np.array_split(order, CHUNKS), val]:
        if len(run):
            decoded = net_predictions(session, task, embedding, anchors, times, labels, train,
                                      known_us, run, int(times[run].min()), history,
                                      max_context)  # fmt: skip
            if decoded is not None:
                keys = anchor_keys(anchors.take(pa.array(run)))
                runs.append((run, decoded if aggregates is None else aggregates.add(decoded, keys)))
    covered = np.zeros(len(labels), dtype=bool)
    for run, _ in runs:
        covered[run] = True
    learn = train[covered[train]]
    if len(learn) < MIN_ROWS or not covered[val].all():
        why = (
            f"{len(learn)} training anchors have a prediction from an earlier context, and "
            f"the tree head needs {MIN_ROWS} (label more anchors: raise anchors.max_context, "
            "or start anchors.spine earlier)"
        )
        say(f"finetune {target}: tree head skipped: {why}")
        skipped = {"kept": False, "skipped": why, "n_train": int(len(learn)), "n_val": len(val)}
        return TreeFit(None, None, skipped)
    say(f"finetune {target}: tree head: net predictions of {len(learn)} training and "
        f"{len(val)} validation anchors ({time.monotonic() - start:.0f}s)")  # fmt: skip
    fitted, labelled = tokens.take(learn), column_names or {}
    ranking = task == "ranking"
    inputs = PAIR_INPUTS if ranking else tuple(sorted({n for _, d in runs for n in d.inputs}))
    spec = TreeSpec(target, task, row_columns(fitted, labelled),
                    0 if ranking else session.embedding_dim, session.model_version,
                    linked_columns(fitted, labelled), inputs,
                    vocabulary([labels[i] for i in learn]) if ranking else (),
                    LINKED_WINDOWS_DAYS)  # fmt: skip
    rows = (
        _pair_rows(spec, tokens, runs, labels)
        if ranking
        else _anchor_rows(spec, tokens, embedding, runs, labels, learn)
    )
    params = PARAMS | {"objective": "l1" if task == "regression" else "binary"}
    params |= (BINARY_PARAMS if task == "binary" else {}) | {"seed": seed}
    params |= {"num_threads": threads} if threads else {}
    cats = spec.categorical()
    dtrain = lgb.Dataset(rows.x_train, rows.y_train, categorical_feature=cats,
                         free_raw_data=False)  # fmt: skip
    dval = lgb.Dataset(rows.x_val, rows.y_val, reference=dtrain, categorical_feature=cats)
    sign = -1.0 if task == "regression" else 1.0  # MAE: lower is better; AUROC, MAP: higher
    fits = []
    for leaves in LEAVES:
        model = lgb.train(params | {"num_leaves": leaves}, dtrain, MAX_ROUNDS, valid_sets=[dval])
        trees_val = model.predict(rows.x_val, num_iteration=model.best_iteration)
        fits.append((rows.score(np.asarray(trees_val, np.float64)), leaves, model))
    after, leaves, booster = max(fits, key=lambda f: sign * f[0])
    before = rows.net
    better = sign * (after - before) > 0
    gain = booster.feature_importance("gain", iteration=booster.best_iteration)
    names = spec.names()
    report = {
        "metric": rows.metric,
        "net": round(before, 6),
        "trees": round(after, 6),
        "kept": bool(better),
        "rounds": int(booster.best_iteration),
        "leaves": leaves,
        "n_train": int(len(learn)),
        "n_val": int(len(val)),
        "top_features": [names[i] for i in np.argsort(-gain)[:8]],
        "seconds": round(time.monotonic() - start, 2),
    }
    say(f"finetune {target}: tree head: validation {rows.metric} {before:.4f} (net) -> "
        f"{after:.4f} (trees, {leaves} leaves, {report['rounds']} rounds); "
        f"{'kept' if better else 'dropped: the net alone is better'}")  # fmt: skip
    return TreeFit(spec, _to_onnx(booster, spec) if better else None, report)


@dataclass(frozen=True)
class _Rows:
    """What the trees learn from and are judged on: features and labels of the training and
    validation rows (anchors, or ranking pairs), the validation metric's name, its value for
    the net, and ``score``: its value for the trees' validation predictions."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    metric: str
    net: float
    score: Callable[[np.ndarray], float]


def _anchor_rows(
    spec: TreeSpec,
    tokens: TokenBatch,
    embedding: np.ndarray,
    runs: list[tuple[np.ndarray, Decoded]],
    labels: Sequence[Any],
    learn: np.ndarray,
) -> _Rows:
    """A binary or regression target: one row per anchor, ``learn`` for training; the last
    run is validation."""
    n = len(labels)
    net = np.full(n, np.nan)
    readout: dict[str, np.ndarray] = {}
    for run, d in runs:
        net[run] = d.probability if spec.task == "binary" else d.prediction
        for name, values in d.inputs.items():
            readout.setdefault(name, np.full(n, np.nan))[run] = values
    x = spec.features(tokens, embedding, net, readout)
    y = np.asarray(labels, np.float64)
    val = runs[-1][0]
    metric = "auroc" if spec.task == "binary" else "mae"

    def score(pred: np.ndarray) -> float:
        if metric == "mae":
            return float(np.mean(np.abs(pred - y[val])))
        value = auroc(y[val], pred)
        if value is None:
            raise RfmError("finetune: the validation anchors hold one class only; no AUROC")
        return value

    return _Rows(x[learn], y[learn], x[val], y[val], metric, score(net[val]), score)


def _pair_rows(
    spec: TreeSpec,
    tokens: TokenBatch,
    runs: list[tuple[np.ndarray, Decoded]],
    labels: Sequence[Any],
) -> _Rows:
    """A ranking target: one row per (anchor, candidate among the readout's best
    :data:`RERANK`), labelled 1 when the item is in the anchor's list; the last run is
    validation, judged by MAP@:data:`RANK_K` (the net's order: the readout's)."""
    parts = []
    for run, d in runs:
        x, best = spec.pair_features(tokens.take(run), d.inputs, d.items, RERANK)
        lists = [{str(i) for i in (labels[a] or ())} for a in run]
        y = [float(d.items[c] in lists[r]) for r, row in enumerate(best) for c in row]
        parts.append((x, np.array(y), best, d.items, lists))
    x_val, y_val, best, items, relevant = parts[-1]

    def score(pred: np.ndarray) -> float:
        order = np.argsort(-pred.reshape(best.shape), axis=1, kind="stable")
        ranked = [[items[c] for c in row[o]] for row, o in zip(best, order, strict=True)]
        return map_at_k(ranked, relevant, RANK_K)

    net = map_at_k([[items[c] for c in row] for row in best], relevant, RANK_K)
    x_train = np.concatenate([p[0] for p in parts[:-1]])
    y_train = np.concatenate([p[1] for p in parts[:-1]])
    return _Rows(x_train, y_train, x_val, y_val, f"map@{RANK_K}", net, score)


def vocabulary(lists: Sequence[Any], min_count: int = 20, most: int = 256) -> tuple[str, ...]:
    """The items of a ranking tree head's ``item`` code: those in at least ``min_count`` of
    the label ``lists``, most frequent first (ties by name), at most ``most``."""
    counts = Counter(str(i) for v in lists for i in set(v or ()))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(i for i, n in ranked[:most] if n >= min_count)


def _to_onnx(booster: Any, spec: TreeSpec) -> bytes:
    """The booster as ONNX with its spec in the metadata (best iteration only)."""
    import lightgbm as lgb
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    text = booster.model_to_string(num_iteration=booster.best_iteration)
    # onnxmltools converts L2 regressors only; an L1 model's trees and output are the same
    text = text.replace("objective=regression_l1", "objective=regression")
    text = text.replace("objective=l1", "objective=regression")
    model = convert_lightgbm(
        lgb.Booster(model_str=text),
        initial_types=[(TREES_INPUT, FloatTensorType([None, spec.width]))],
        zipmap=False,
        target_opset=15,
    )
    entry = model.metadata_props.add()
    entry.key, entry.value = TREES_KEY, spec.to_json()
    return bytes(model.SerializeToString())
