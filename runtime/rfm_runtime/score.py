"""Stream predictions: encode the labelled context once, then score query anchors B at a time.

Only the context embeddings (``N x d``) and one batch of query anchors are in memory at a
time; the output is a generator of record batches that a dbt Python model can return as a
``pyarrow.RecordBatchReader`` (:func:`as_reader`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace

import numpy as np
import pyarrow as pa

from rfm_runtime.embed_cache import EmbeddingCache
from rfm_runtime.errors import RfmError
from rfm_runtime.history import (
    HISTORY_TERMS,
    HeadPredict,
    TargetHistory,
    fit_regression_readout,
)
from rfm_runtime.history import READOUT_TERMS as REGRESSION_TERMS
from rfm_runtime.labels import ContextLabels, Decoded, decode, prepare_labels
from rfm_runtime.progress import Progress, ProgressTracker
from rfm_runtime.ranking import (
    READOUT_TERMS,
    ItemHistory,
    RankingLabels,
    decode_ranking,
    fit_readout,
    head_logits,
    is_list_labels,
    prepare_ranking,
)
from rfm_runtime.schema import CELLS, PREDICTIONS, embeddings_schema
from rfm_runtime.session import RfmSession
from rfm_runtime.siblings import SiblingHistory, fit_binary_readout
from rfm_runtime.token_stream import TokenChunk, iter_token_batches
from rfm_runtime.tokenize import AnchorKey, TokenBatch, TokenizerConfig, anchor_keys, tokenize
from rfm_runtime.trees import RERANK, NamedInputs, TreeHead

ProgressCallback = Callable[[Progress], None]


def encode_context(
    session: RfmSession,
    context_cells: Iterable[pa.RecordBatch],
    context_labels: pa.Table,
    task: str,
    config: TokenizerConfig,
    cache: EmbeddingCache | None = None,
) -> tuple[np.ndarray, ContextLabels | RankingLabels]:
    """Embed the labelled context anchors once.

    Args:
        session: the opened artifact.
        context_cells: CELLS batches of the context anchors (any subset may lack cells).
        context_labels: ``entity_id, anchor_time, label[, label_class]``; multiclass reads
            ``label_class`` when it holds any value, else ``label``; ranking labels are
            lists of items (or 0/1 relevance of (entity, candidate) anchors).
        task: the target's task type.
        config: tokenizer settings.
        cache: embeddings computed earlier in this run (other targets), reused and extended.

    Returns:
        ``(float32[M, d] embeddings of the kept rows, their labels)`` in label-table order.

    Raises:
        RfmError: when the label table lacks a column or has no usable label.
    """
    for name in ("entity_id", "anchor_time", "label"):
        if name not in context_labels.column_names:
            raise RfmError(
                f"context labels lack column '{name}'; "
                f"found {', '.join(context_labels.column_names)}"
            )
    keys = anchor_keys(context_labels)
    has_class = "label_class" in context_labels.column_names
    has_class = has_class and context_labels["label_class"].null_count < context_labels.num_rows
    column = "label_class" if task == "multiclass" and has_class else "label"
    values = context_labels.column(column).to_pylist()
    labels: ContextLabels | RankingLabels
    if task == "ranking" and is_list_labels(values):
        labels = prepare_ranking(values)
    else:
        labels = prepare_labels(task, values, session.contract.max_classes)
    wanted = {k for k, kept in zip(keys, labels.keep.tolist(), strict=True) if kept}
    found: dict[AnchorKey, np.ndarray] = {}
    for chunk in iter_token_batches(context_cells, config):
        chunk_keys = anchor_keys(chunk.anchors)
        rows = [i for i, k in enumerate(chunk_keys) if k in wanted]
        if rows:
            tokens = (
                chunk.tokens if len(rows) == len(chunk_keys) else chunk.tokens.take(np.array(rows))
            )
            row_keys = [chunk_keys[i] for i in rows]
            emb = _encode(session, tokens, row_keys, config, cache)
            found.update(zip(row_keys, emb, strict=True))
    missing = [k for k in dict.fromkeys(keys) if k in wanted and k not in found]
    for start in range(0, len(missing), config.batch_size):
        part = missing[start : start + config.batch_size]
        emb = _encode(session, tokenize(CELLS.empty_table(), part, config), part, config, cache)
        found.update(zip(part, emb, strict=True))
    kept_keys = [k for k, kept in zip(keys, labels.keep.tolist(), strict=True) if kept]
    context = np.stack([found[k] for k in kept_keys]).astype(np.float32)
    return context, labels


def score(
    session: RfmSession,
    context_cells: Iterable[pa.RecordBatch],
    context_labels: pa.Table,
    query_cells: Iterable[pa.RecordBatch],
    task: str,
    target_name: str,
    *,
    query_anchors: Iterable[pa.RecordBatch] | None = None,
    target_column: str | tuple[str, ...] | None = None,
    history: pa.Table | None = None,
    batch_size: int = 32,
    top_k: int = 10,
    total_queries: int | None = None,
    dbt_invocation_id: str | None = None,
    progress: ProgressCallback | None = None,
    echo: bool = False,
    cache: EmbeddingCache | None = None,
    aggregates: pa.Table | None = None,
) -> Iterator[pa.RecordBatch]:
    """Predict ``target_name`` for every query anchor, streaming.

    Args:
        session: the opened artifact.
        context_cells: CELLS batches of the labelled context anchors.
        context_labels: ``entity_id, anchor_time, label[, label_class]``.
        query_cells: CELLS batches of the query anchors, read lazily, B anchors at a time.
        task: ``binary``, ``regression``, ``multiclass`` or ``ranking`` (list labels:
            candidates scored one by one, see ``rfm_runtime.ranking``).
        target_name: written into every row.
        query_anchors: ANCHORS batches, same order as ``query_cells``: anchors without any
            cell still get a row. Without it, every anchor present in ``query_cells`` does.
        target_column: for static targets: the entity column that is the label (dropped).
        history: the readout's history of the context and query anchors: ranking,
            ``ITEM_HISTORY`` rows (without it the history terms are 0); regression,
            ``TARGET_HISTORY`` rows; static binary, ``SIBLING_HISTORY`` rows (without it the
            regression or binary prediction is the head's alone).
        batch_size: query anchors per batch B.
        top_k: ranking: items listed in ``class_scores``.
        total_queries: number of query anchors, when known, for the ETA.
        dbt_invocation_id: written into every row.
        progress: called with a :class:`Progress` every ~10 s and at the end.
        echo: also print progress lines (dbt shows a Python model's prints).
        cache: embeddings shared by the targets of one run: anchors another target already
            encoded (same hidden columns) are not encoded again.
        aggregates: ``entity_id, anchor_time`` and named features of the query anchors that
            the artifact's tree head reads (:class:`~rfm_runtime.trees.NamedInputs`).

    Yields:
        Record batches in schema ``PREDICTIONS``, one row per query anchor.
    """
    config = session.tokenizer_config(batch_size, target_column)
    context, labels = encode_context(session, context_cells, context_labels, task, config, cache)
    shown = target_name if echo else None
    predict = fit_predictor(session, task, context, labels, context_labels, history, top_k, shown)
    trees = _trees_for(session, target_name, task, echo)
    named = None if trees is None or aggregates is None else NamedInputs(aggregates)
    scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    tracker = ProgressTracker(f"scoring {target_name}", total_queries, progress, echo=echo)
    for chunk in iter_token_batches(query_cells, config, anchors=query_anchors):
        keys = anchor_keys(chunk.anchors)
        query = _encode(session, chunk.tokens, keys, config, cache)
        decoded = predict(query, keys)
        if trees is not None:
            decoded = decoded if named is None else named.add(decoded, keys)
            decoded = apply_trees(trees, chunk.tokens, query, decoded, top_k)
        yield _predictions(chunk, decoded, target_name, session, scored_at, dbt_invocation_id)
        tracker.update(chunk.tokens.num_anchors)
    tracker.finish()


Predictor = Callable[[np.ndarray, list[AnchorKey]], Decoded]


def fit_predictor(
    session: RfmSession,
    task: str,
    context: np.ndarray,
    labels: ContextLabels | RankingLabels,
    context_labels: pa.Table,
    history: pa.Table | None = None,
    top_k: int = 10,
    echo: str | None = None,
) -> Predictor:
    """The net's predictor of query anchors from an encoded, labelled context: the ICL head,
    then the target's readout where it has one, fitted on the context here (ranking: item
    history; regression and static binary targets with a ``history``: target or sibling
    history). ``context`` and ``labels`` come from :func:`encode_context`; ``echo`` names the
    target in a printed line with the readout's weights.

    Returns:
        ``predict(query embeddings float32[B, d], their anchor keys) -> Decoded``.
    """
    kept = _kept_keys(context_labels, labels.keep)
    if isinstance(labels, RankingLabels):
        ranked = labels
        items = ItemHistory(history)
        readout = fit_readout(
            session.class_probs, context, ranked, items.features(kept, ranked.items)
        )
        if echo:
            _echo_readout(echo, "ranking", len(kept), READOUT_TERMS, readout.weights)

        def rank(query: np.ndarray, keys: list[AnchorKey]) -> Decoded:
            head = head_logits(session.class_probs, query, context, ranked)
            inputs = readout.inputs(items.features(keys, ranked.items), head)
            return decode_ranking(ranked.items, inputs["score"], top_k, inputs)

        return rank

    def net(query: np.ndarray, keys: list[AnchorKey]) -> Decoded:
        return decode(labels, session.class_probs(query, context, labels))

    if task == "regression" and history is not None:
        past = TargetHistory(history)
        y = np.array(context_labels.column("label").to_pylist(), np.float64)[labels.keep]
        regression = fit_regression_readout(_head(session, task), context, y, past.features(kept))
        if echo:
            _echo_readout(echo, "regression", len(kept), REGRESSION_TERMS, regression.weights)

        def value(query: np.ndarray, keys: list[AnchorKey]) -> Decoded:
            decoded = net(query, keys)
            history = past.features(keys)
            pred = regression.predict(history, decoded.prediction)
            return replace(decoded, prediction=pred, inputs=_named(HISTORY_TERMS, history))

        return value
    if task == "binary" and history is not None:
        y = labels.classes.astype(np.float64)
        terms, features = _binary_history(history, float(y.mean()))
        binary = fit_binary_readout(_head(session, task), context, y, features(kept))
        if binary is not None:
            fitted = binary
            if echo:
                _echo_readout(echo, "binary", len(kept), ("head", *terms, "bias"), fitted.weights)

            def probability(query: np.ndarray, keys: list[AnchorKey]) -> Decoded:
                decoded = net(query, keys)
                x = features(keys)
                prob = fitted.probability(x, decoded.probability)
                return replace(
                    decoded,
                    prediction=(prob >= 0.5).astype(np.float64),
                    probability=prob,
                    inputs=_named(terms, x),
                )

            return probability
    return net


def _binary_history(
    history: pa.Table, base_rate: float
) -> tuple[list[str], Callable[[Sequence[AnchorKey]], np.ndarray]]:
    """A binary target's readout features by anchor and their names: the sibling features of
    a static target (``SIBLING_HISTORY``), or a signed ``log1p`` of an aggregate target's own
    history (``TARGET_HISTORY``: its rows, or its column's sum, per past window)."""
    if "per_window_1" in history.column_names:
        past = TargetHistory(history)

        def own(keys: Sequence[AnchorKey]) -> np.ndarray:
            v = past.features(keys)
            return np.sign(v) * np.log1p(np.abs(v))

        return list(HISTORY_TERMS), own
    siblings = SiblingHistory(history)
    return siblings.terms, lambda keys: siblings.features(keys, base_rate)


def apply_trees(
    trees: TreeHead, tokens: TokenBatch, query: np.ndarray, decoded: Decoded, top_k: int = 10
) -> Decoded:
    """The tree head's prediction of B anchors from their tokens, embeddings and the net's
    prediction ``decoded`` with its readout's inputs (:mod:`rfm_runtime.trees`); ranking:
    the trees' order of the readout's best candidates, ``top_k`` of them listed."""
    spec = trees.spec
    if spec.task == "ranking":
        top = max(RERANK, top_k)
        x, best = spec.pair_features(tokens, decoded.inputs, decoded.items, top)
        scores = np.full(decoded.inputs["score"].shape, -np.inf)
        np.put_along_axis(scores, best, trees.predict(x).reshape(best.shape), axis=1)
        return decode_ranking(decoded.items, scores, top_k, decoded.inputs)
    if spec.task == "binary":
        x = spec.features(tokens, query, decoded.probability, decoded.inputs)
        prob = trees.predict(x)
        return replace(decoded, prediction=(prob >= 0.5).astype(np.float64), probability=prob)
    pred = trees.predict(spec.features(tokens, query, decoded.prediction, decoded.inputs))
    return replace(decoded, prediction=pred)


def _named(names: Sequence[str], columns: np.ndarray) -> dict[str, np.ndarray]:
    """``columns [Q, len(names)]`` by name."""
    return {n: columns[:, j] for j, n in enumerate(names)}


def _trees_for(session: RfmSession, target: str, task: str, echo: bool) -> TreeHead | None:
    """The artifact's tree head when it was fitted for ``target`` (else None: the net alone).

    Raises:
        RfmError: when it was fitted for a target of that name with another task type.
    """
    trees = session.trees
    if trees is None:
        return None
    if trees.spec.target != target:
        if echo:
            print(
                f"dbt-rfm: {target}: the artifact's tree head is fitted for target "
                f"'{trees.spec.target}'; {target} is scored by the net alone"
            )
        return None
    if trees.spec.task != task:
        raise RfmError(
            f"target '{target}' is {task}, but the artifact's tree head ({trees.path}) was "
            f"fitted for a {trees.spec.task} target of that name; fine-tune again"
        )
    if echo:
        print(f"dbt-rfm: {target}: tree head {trees.path.name} ({trees.spec.width} features)")
    return trees


def embed(
    session: RfmSession,
    cells: Iterable[pa.RecordBatch],
    target_name: str,
    *,
    anchors: Iterable[pa.RecordBatch] | None = None,
    target_column: str | tuple[str, ...] | None = None,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
    cache: EmbeddingCache | None = None,
) -> Iterator[pa.RecordBatch]:
    """Anchor embeddings, streaming, in schema ``embeddings_schema(d)`` (args as :func:`score`)."""
    config = session.tokenizer_config(batch_size, target_column)
    schema = embeddings_schema(session.embedding_dim)
    tracker = ProgressTracker(f"embedding {target_name}", None, progress)
    for chunk in iter_token_batches(cells, config, anchors=anchors):
        emb = _encode(session, chunk.tokens, anchor_keys(chunk.anchors), config, cache)
        b = len(emb)
        flat = pa.array(emb.reshape(-1), pa.float32())
        yield pa.record_batch(
            [
                chunk.anchors.column("entity_id").combine_chunks(),
                chunk.anchors.column("anchor_time").combine_chunks(),
                pa.array([target_name] * b, pa.string()),
                pa.FixedSizeListArray.from_arrays(flat, session.embedding_dim),
                pa.array([session.model_version] * b, pa.string()),
            ],
            schema=schema,
        )
        tracker.update(b)
    tracker.finish()


def as_reader(schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> pa.RecordBatchReader:
    """Wrap a batch generator as a reader (what a dbt-duckdb Python model returns to stream)."""
    return pa.RecordBatchReader.from_batches(schema, batches)


def _kept_keys(context_labels: pa.Table, keep: np.ndarray) -> list[AnchorKey]:
    """Keys of the context anchors the head reads (``keep``), in label-table order."""
    keys = anchor_keys(context_labels)
    return [k for k, kept in zip(keys, keep.tolist(), strict=True) if kept]


def _head(session: RfmSession, task: str) -> HeadPredict:
    """The head's prediction of queries from a labelled context: the value (regression) or
    P(label) (binary)."""

    def head(query: np.ndarray, context: np.ndarray, values: np.ndarray) -> np.ndarray:
        labels = prepare_labels(task, values, session.contract.max_classes)
        decoded = decode(labels, session.class_probs(query, context, labels))
        return decoded.prediction if task == "regression" else decoded.probability

    return head


def _echo_readout(
    target: str, kind: str, n: int, terms: tuple[str, ...], w: np.ndarray, top: int = 8
) -> None:
    """Print the fitted weights; past ``top`` terms, head, bias and the largest others."""
    pairs = list(zip(terms, w, strict=True))
    more = ""
    if len(pairs) > top:
        fixed = [p for p in pairs if p[0] in ("head", "bias")]
        rest = sorted((p for p in pairs if p not in fixed), key=lambda p: -abs(p[1]))
        pairs = fixed + rest[: top - len(fixed)]
        more = f" ({len(pairs)} of {len(terms)} terms)"
    weights = ", ".join(f"{t} {v:.2f}" for t, v in pairs)
    print(f"dbt-rfm: {target}: {kind} readout ({n} context anchors){more}: {weights}")


def _encode(
    session: RfmSession,
    tokens: TokenBatch,
    keys: list[AnchorKey],
    config: TokenizerConfig,
    cache: EmbeddingCache | None,
) -> np.ndarray:
    """``float32[B, d]`` embeddings, through the cache when there is one."""
    if cache is None:
        return session.encode(tokens)
    return cache.encode(session, tokens, keys, config)


def _predictions(
    chunk: TokenChunk,
    d: Decoded,
    target_name: str,
    session: RfmSession,
    scored_at: dt.datetime,
    invocation: str | None,
) -> pa.RecordBatch:
    b = chunk.tokens.num_anchors
    return pa.record_batch(
        [
            chunk.anchors.column("entity_id").combine_chunks(),
            chunk.anchors.column("anchor_time").combine_chunks(),
            pa.array([target_name] * b, pa.string()),
            pa.array(d.prediction, pa.float64(), from_pandas=True),
            pa.array(d.probability, pa.float64(), from_pandas=True),
            pa.array(d.predicted_class, pa.string()),
            pa.array(d.class_scores, PREDICTIONS.field("class_scores").type),
            pa.array([session.model_version] * b, pa.string()),
            pa.array([scored_at] * b, pa.timestamp("us")),
            pa.array([invocation] * b, pa.string()),
        ],
        schema=PREDICTIONS,
    )
