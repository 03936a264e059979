"""The tree head: gradient-boosted trees over the entity row's own values, aggregates of the
sampled rows linked to it, the anchor embedding and the net's prediction, fitted by
``dbt-rfm finetune`` for one target (decisions 0011 and 0012).

An artifact may carry ``<prefix>.trees.onnx`` beside its encoder and ICL head: a LightGBM
model converted to ONNX (``ai.onnx.ml`` tree ensembles, which every onnxruntime build runs),
whose :class:`TreeSpec` (metadata key ``rfm_trees``) says which target it was fitted for and
which features it reads, in this order:

1. the entity row's own columns, found by their hashed names among the tokens of node 0: the
   encoded number (numerical, timestamp, boolean columns) or a category code (categorical
   columns: the fitted vocabulary of hashed values; others are missing);
2. the entity row's child counts (the anchor token's ``row_counts``);
3. for each number, boolean or timestamp column of the sampled rows beyond the entity row,
   told apart by hop, the table the row was reached from, its table and its column (a
   :class:`LinkedColumn`): the mean of the encoded values over those rows of the anchor's
   subgraph, the value of the most recent of them (the one with the latest row time), and the
   mean and sum over those with a row time in each of the spec's ``windows`` before the
   anchor (decision 0016);
4. the inputs of the net's readout beside the head (``Decoded.inputs``, by name): the target's
   own history of a regression target, the sibling rates of a static binary target; and the
   warehouse's time-aware aggregates over the declared links (:class:`NamedInputs`, names
   starting ``agg:``; decision 0020);
5. the anchor embedding (``d`` values);
6. the net's prediction after its readout: P(label) for a binary target, the value for a
   regression target.

A ranking target's trees (decision 0015) score (anchor, candidate item) pairs instead: items
1 to 3 of the anchor, then the ranking readout's terms of the pair and its score
(``Decoded.inputs``, by name), and the item's code (the fitted vocabulary of items); no
embedding and no net column. They rerank the readout's best :data:`RERANK` candidates (or
``top_k``, when more); the others follow in the readout's order.

Scoring runs the net as always, then the trees on these features, for the target they were
fitted for only; every other target of a run keeps the net's prediction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pyarrow as pa

from rfm_runtime.errors import RfmError
from rfm_runtime.hashing import name_ids
from rfm_runtime.labels import Decoded
from rfm_runtime.tokenize import (
    COUNT_WINDOWS_DAYS,
    ROW_COUNT_WIDTH,
    STYPE_IDS,
    AnchorKey,
    TokenBatch,
    TokenizerConfig,
    anchor_keys,
)

#: File suffix of the tree head beside ``<prefix>.encoder.onnx``.
TREES_SUFFIX = ".trees.onnx"
#: ONNX metadata key of the :class:`TreeSpec`.
TREES_KEY = "rfm_trees"
#: Input name of the tree model.
TREES_INPUT = "features"
#: Task types a tree head predicts.
TREE_TASKS = ("binary", "regression", "ranking")
#: A ranking tree head reranks this many of the readout's best candidates per anchor.
RERANK = 16
#: Features of each :class:`LinkedColumn`, in order; then :data:`WINDOW_STATS` per window.
LINKED_STATS = ("mean", "last")
#: Windows (days before the anchor) of the linked columns of a tree head fitted now (0016).
LINKED_WINDOWS_DAYS = (0.125, 0.25, 1.0, 7.0)
#: Features of each :class:`LinkedColumn` per window of the spec, in order.
WINDOW_STATS = ("mean", "sum")
#: Column stypes a :class:`LinkedColumn` aggregates.
LINKED_STYPES = tuple(STYPE_IDS[k] for k in ("numerical", "timestamp", "boolean"))
#: Anchors whose linked aggregates are computed at once (bounds the memory of the node arrays).
CHUNK = 2048


@dataclass(frozen=True)
class RowColumn:
    """One column of the entity row the trees read.

    Attributes:
        name_ids: the column's hashed name features (``TokenBatch.column_name_ids``).
        label: the column's name, for reports.
        codes: categorical columns: hashed value id (first of ``value_ids``) -> code, in the
            order codes are numbered; None for a column read as a number.
    """

    name_ids: tuple[int, ...]
    label: str
    codes: tuple[int, ...] | None = None


@dataclass(frozen=True)
class LinkedColumn:
    """A number, boolean or timestamp column of the sampled rows of one table reached at one
    hop from rows of another (module docstring, item 3).

    Attributes:
        hop: the rows' hop (1 = linked to the entity row).
        parent_ids, table_ids, column_ids: hashed names (``name_slots`` ids each) of the
            table the rows were reached from, of their table, and of the column.
        label: ``parent>table.column@hop``, for reports.
    """

    hop: int
    parent_ids: tuple[int, ...]
    table_ids: tuple[int, ...]
    column_ids: tuple[int, ...]
    label: str

    @property
    def key(self) -> tuple[int, ...]:
        """The ids a token's key row holds (:func:`_linked_tokens`)."""
        return (self.hop, *self.parent_ids, *self.table_ids, *self.column_ids)


@dataclass(frozen=True)
class TreeSpec:
    """What a tree head was fitted for and reads (module docstring).

    Attributes:
        target: the target's name; task: ``binary`` or ``regression``.
        columns: the entity row's columns, in feature order.
        embedding_dim: d of the net it was fitted on.
        model_version: the net's version (its encoder and head bytes) it was fitted on.
        linked: the linked rows' columns, in feature order; readout: names of the readout's
            inputs, in feature order (a spec written before either existed has none).
        items: ranking: the items coded in the ``item`` feature, in code order.
        windows: days before the anchor of each linked column's windowed means and sums (a
            spec written before decision 0016 has none).
    """

    target: str
    task: str
    columns: tuple[RowColumn, ...]
    embedding_dim: int
    model_version: str
    linked: tuple[LinkedColumn, ...] = ()
    readout: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    windows: tuple[float, ...] = ()

    @property
    def stats(self) -> tuple[str, ...]:
        """Names of each linked column's features, in order."""
        return (*LINKED_STATS, *(f"{s}_{w:g}d" for w in self.windows for s in WINDOW_STATS))

    @property
    def width(self) -> int:
        """Number of features."""
        return len(self.names())

    def categorical(self) -> list[int]:
        """Indices of the features that hold category codes."""
        codes = [i for i, c in enumerate(self.columns) if c.codes is not None]
        return codes + [self.width - 1] if self.task == "ranking" else codes

    def names(self) -> list[str]:
        """Feature names, in order."""
        counts = ["children", *(f"children_{d:g}d" for d in COUNT_WINDOWS_DAYS)]
        linked = [f"{c.label}:{stat}" for c in self.linked for stat in self.stats]
        emb = [f"embedding_{i}" for i in range(self.embedding_dim)]
        readout = [f"readout:{n}" for n in self.readout]
        last = "item" if self.task == "ranking" else "net"
        return [c.label for c in self.columns] + counts + linked + readout + emb + [last]

    def to_json(self) -> str:
        """The spec as JSON (stored in the ONNX metadata)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> TreeSpec:
        """Parse :meth:`to_json`'s output."""
        d = json.loads(raw)
        columns = tuple(
            RowColumn(
                tuple(c["name_ids"]),
                c["label"],
                None if c["codes"] is None else tuple(c["codes"]),
            )
            for c in d["columns"]
        )
        linked = tuple(
            LinkedColumn(
                int(c["hop"]),
                tuple(c["parent_ids"]),
                tuple(c["table_ids"]),
                tuple(c["column_ids"]),
                c["label"],
            )
            for c in d.get("linked", ())
        )
        return cls(
            d["target"],
            d["task"],
            columns,
            int(d["embedding_dim"]),
            d["model_version"],
            linked,
            tuple(d.get("readout", ())),
            tuple(d.get("items", ())),
            tuple(float(w) for w in d.get("windows", ())),
        )

    def features(
        self,
        tokens: TokenBatch,
        embedding: np.ndarray,
        net: np.ndarray,
        readout: dict[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """``float32[B, width]`` features of B anchors (module docstring) from their tokens,
        embeddings, the net's prediction and the readout's inputs by name; NaN where
        missing."""
        b = tokens.num_anchors
        out = np.full((b, self.width), np.nan, np.float32)
        at = self._anchor_features(tokens, out)
        for j, name in enumerate(self.readout):
            if readout and name in readout:
                out[:, at + j] = readout[name]
        at += len(self.readout)
        out[:, at : at + self.embedding_dim] = embedding
        out[:, -1] = net
        return out

    def pair_features(
        self, tokens: TokenBatch, inputs: dict[str, np.ndarray], items: tuple[str, ...], top: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """A ranking target's features of its B anchors' best ``top`` candidates by the
        readout's score (module docstring): ``float32[B * n, width]`` and the candidates'
        indices into ``items``, ``int64[B, n]``, best first (n = min(top, len(items)))."""
        b, n = tokens.num_anchors, min(top, len(items))
        best = np.argsort(-inputs["score"], axis=1, kind="stable")[:, :n]
        out = np.full((b, n, self.width), np.nan, np.float32)
        at = self._anchor_features(tokens, out[:, 0])
        out[:, 1:, :at] = out[:, :1, :at]
        for j, name in enumerate(self.readout):
            if name in inputs:
                out[:, :, at + j] = np.take_along_axis(inputs[name], best, axis=1)
        code = {item: i for i, item in enumerate(self.items)}
        codes = np.array([code.get(item, np.nan) for item in items], np.float32)
        out[:, :, -1] = codes[best]
        return out.reshape(b * n, self.width), best

    def _anchor_features(self, tokens: TokenBatch, out: np.ndarray) -> int:
        """Write the entity row's columns, child counts and linked aggregates of B anchors into
        the first columns of ``out [B, width]``; returns how many columns that is."""
        b = tokens.num_anchors
        row = (tokens.node_index == 0) & (tokens.column_index > 0) & (tokens.value_null == 0)
        for j, col in enumerate(self.columns):
            hit = row & np.all(tokens.column_name_ids == np.asarray(col.name_ids), axis=-1)
            anchor, pos = np.nonzero(hit)
            if col.codes is None:
                out[anchor, j] = tokens.value_num[anchor, pos]
            else:
                lookup = {v: i for i, v in enumerate(col.codes)}
                values = tokens.value_ids[anchor, pos, 0].tolist()
                out[anchor, j] = [lookup.get(v, np.nan) for v in values]
        at = len(self.columns)
        out[:, at : at + ROW_COUNT_WIDTH] = tokens.row_counts[:, 0, :]
        at += ROW_COUNT_WIDTH
        width = len(self.stats) * len(self.linked)
        for start in range(0, b, CHUNK):
            rows = slice(start, min(start + CHUNK, b))
            out[rows, at : at + width] = self._linked_features(tokens.take(rows))
        return at + width

    def _linked_features(self, tokens: TokenBatch) -> np.ndarray:
        """``float32[B, len(stats) * len(linked)]``: mean, most recent value and windowed means
        and sums of each linked column."""
        b, p = tokens.num_anchors, len(self.linked)
        out = np.full((b, p, len(self.stats)), np.nan, np.float32)
        anchor, pos, keys = _linked_tokens(tokens)
        if p == 0 or len(anchor) == 0:
            return out.reshape(b, -1)
        found, inverse = np.unique(keys, axis=0, return_inverse=True)
        index = {c.key: j for j, c in enumerate(self.linked)}
        which = np.array([index.get(tuple(int(v) for v in k), -1) for k in found])[inverse]
        ok = which >= 0
        anchor, pos, group = anchor[ok], pos[ok], anchor[ok] * p + which[ok]
        value = tokens.value_num[anchor, pos].astype(np.float64)
        flat = out.reshape(b * p, -1)
        timed = tokens.rel_null[anchor, pos] == 0
        # rel_days is sign(d) * log1p(|d|) of the row time minus the anchor time, d in days
        rank = np.where(timed, tokens.rel_days[anchor, pos], -np.inf)
        # every row (column 0: the mean), then each window (its mean, and its sum: 0 if empty)
        starts = [0, *(len(LINKED_STATS) + k * len(WINDOW_STATS) for k in range(len(self.windows)))]
        for at, w in zip(starts, (np.inf, *self.windows), strict=True):
            keep = rank >= -np.log1p(w)
            counts = np.bincount(group[keep], minlength=b * p)
            sums = np.bincount(group[keep], weights=value[keep], minlength=b * p)
            seen = counts > 0
            flat[seen, at] = sums[seen] / counts[seen]
            if at:
                flat[:, at + 1] = sums
        # the most recent row: latest row time; rows without one (static tables) rank first
        order = np.lexsort((rank, group))
        ends = np.append(group[order][1:] != group[order][:-1], True)
        flat[group[order][ends], 1] = value[order][ends]
        return out.reshape(b, -1)


def name_labels(names: Iterable[str], config: TokenizerConfig) -> dict[tuple[int, ...], str]:
    """Hashed name ids -> name, for :func:`row_columns`'s ``labels``."""
    return {name_ids(n, config.name_buckets, config.name_slots): n for n in names}


def row_columns(
    tokens: TokenBatch,
    labels: dict[tuple[int, ...], str],
    max_codes: int = 64,
    min_count: int = 20,
) -> tuple[RowColumn, ...]:
    """The entity row's columns found in ``tokens`` (text columns left out), with the
    vocabulary of categorical ones.

    Args:
        tokens: the anchors the trees are fitted on.
        labels: hashed name ids -> column name, for reports (others are named ``col_<k>``).
        max_codes: most categories kept per categorical column (the most frequent).
        min_count: categories seen fewer times are missing.
    """
    row = (tokens.node_index == 0) & (tokens.column_index > 0)
    keys = np.unique(tokens.column_name_ids[row], axis=0)
    columns = []
    for k, ids in enumerate(keys):
        key = tuple(int(v) for v in ids)
        hit = row & np.all(tokens.column_name_ids == ids, axis=-1)
        stype = int(tokens.stype[hit][0])
        label = labels.get(key, f"col_{k}")
        if stype == STYPE_IDS["categorical"]:
            values, counts = np.unique(tokens.value_ids[hit][:, 0], return_counts=True)
            order = np.argsort(-counts, kind="stable")[:max_codes]
            kept = [int(values[i]) for i in order if counts[i] >= min_count and values[i] != 0]
            if kept:
                columns.append(RowColumn(key, label, tuple(kept)))
        elif stype != STYPE_IDS["text"]:
            columns.append(RowColumn(key, label))
    return tuple(columns)


def _linked_tokens(tokens: TokenBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchor and position of each non-null linked-column cell of rows beyond the entity row,
    with its key row ``[hop, parent table ids, table ids, column ids]``
    (:attr:`LinkedColumn.key`)."""
    b = tokens.num_anchors
    nodes = int(tokens.node_index.max()) + 1 if tokens.node_index.size else 1
    node_table = np.zeros((b, max(nodes, 1), tokens.table_name_ids.shape[-1]), np.int64)
    a, s = np.nonzero(tokens.node_index >= 0)
    node_table[a, tokens.node_index[a, s]] = tokens.table_name_ids[a, s]
    cell = (
        (tokens.node_index > 0)
        & (tokens.parent_index >= 0)
        & (tokens.column_index > 0)
        & (tokens.value_null == 0)
        & np.isin(tokens.stype, LINKED_STYPES)
    )
    a, s = np.nonzero(cell)
    keys = np.concatenate(
        [
            tokens.hop[a, s, None],
            node_table[a, tokens.parent_index[a, s]],
            tokens.table_name_ids[a, s],
            tokens.column_name_ids[a, s],
        ],
        axis=1,
    )
    return a, s, keys


def linked_columns(
    tokens: TokenBatch, labels: dict[tuple[int, ...], str], min_count: int = 20
) -> tuple[LinkedColumn, ...]:
    """The linked columns (module docstring, item 3) found in ``tokens`` with a value in at
    least ``min_count`` anchors, in a stable order.

    Args:
        tokens: the anchors the trees are fitted on.
        labels: hashed name ids -> table or column name, for reports (others are ``?``).
        min_count: fewest anchors a linked column must have a value in.
    """
    seen: dict[tuple[int, ...], int] = {}
    for start in range(0, tokens.num_anchors, CHUNK):
        anchor, _, keys = _linked_tokens(tokens.take(slice(start, start + CHUNK)))
        found, inverse = np.unique(keys, axis=0, return_inverse=True)
        pairs = np.unique(np.stack([inverse.reshape(-1), anchor]), axis=1)
        for k, n in zip(found, np.bincount(pairs[0], minlength=len(found)), strict=True):
            key = tuple(int(v) for v in k)
            seen[key] = seen.get(key, 0) + int(n)
    slots = (len(next(iter(seen))) - 1) // 3 if seen else 0
    out = []
    for key in sorted(k for k, n in seen.items() if n >= min_count):
        hop, ids = key[0], key[1:]
        parent, table, column = ids[:slots], ids[slots : 2 * slots], ids[2 * slots :]
        name = "{}>{}.{}@{}".format(*(labels.get(i, "?") for i in (parent, table, column)), hop)
        out.append(LinkedColumn(hop, parent, table, column, name))
    return tuple(out)


class NamedInputs:
    """Features of anchors computed outside the net, by name, that a tree head reads beside
    the readout's inputs: the warehouse aggregates of decision 0020.

    Args:
        table: ``entity_id, anchor_time`` and one number column per feature.
    """

    def __init__(self, table: pa.Table) -> None:
        self.names = [n for n in table.column_names if n not in ("entity_id", "anchor_time")]
        self._row = {k: i for i, k in enumerate(anchor_keys(table))}
        self._values = np.full((table.num_rows + 1, len(self.names)), np.nan, np.float32)
        for j, name in enumerate(self.names):  # the last row: anchors without a row
            col = table.column(name).cast(pa.float32()).to_numpy(zero_copy_only=False)
            self._values[:-1, j] = col

    def add(self, decoded: Decoded, keys: Sequence[AnchorKey]) -> Decoded:
        """``decoded`` of the anchors ``keys`` with these features among its inputs (NaN for
        an anchor without a row)."""
        rows = np.array([self._row.get(k, -1) for k in keys], np.int64)
        values = self._values[rows]
        named = {n: values[:, j].astype(np.float64) for j, n in enumerate(self.names)}
        return replace(decoded, inputs={**decoded.inputs, **named})


class TreeHead:
    """An opened tree head: its spec and its onnxruntime session."""

    def __init__(self, session: ort.InferenceSession, spec: TreeSpec, path: Path) -> None:
        self.session, self.spec, self.path = session, spec, path
        out = session.get_outputs()
        # LightGBM classifiers give (label, probabilities[B, 2]); regressors one [B, 1] value
        self._output = out[-1].name
        self._binary = spec.task != "regression"  # ranking: P(item in the list) per pair

    @classmethod
    def open(cls, path: Path, options: ort.SessionOptions, providers: list[str]) -> TreeHead:
        """Open ``path`` and read its spec.

        Raises:
            RfmError: when onnxruntime cannot open it or it carries no spec.
        """
        try:
            sess = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own types
            raise RfmError(f"onnxruntime cannot open the tree head {path}: {exc}") from exc
        meta = sess.get_modelmeta().custom_metadata_map
        if TREES_KEY not in meta:
            raise RfmError(
                f"tree head {path} carries no '{TREES_KEY}' metadata; write it with "
                "`dbt-rfm finetune` (dbt_rfm.finetune.trees)"
            )
        spec = TreeSpec.from_json(meta[TREES_KEY])
        width = sess.get_inputs()[0].shape[-1]
        if sess.get_inputs()[0].name != TREES_INPUT or width != spec.width:
            raise RfmError(
                f"tree head {path}: input {sess.get_inputs()[0].name}[{width}], its spec says "
                f"{TREES_INPUT}[{spec.width}]"
            )
        return cls(sess, spec, path)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """``float64[B]``: P(label) (binary; ranking: of each pair) or the value (regression)."""
        if len(features) == 0:
            return np.zeros(0, np.float64)
        out = np.asarray(self.session.run([self._output], {TREES_INPUT: features})[0])
        return np.asarray(out[:, 1] if self._binary else out.reshape(-1), np.float64)
