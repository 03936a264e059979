"""Cells -> tokens: one token per cell, padded to ``seq_len`` per anchor. numpy only.

The same code feeds training and serving, so there is no train/serve skew. Every anchor gets
one extra *anchor token* at position 0 (stype ``anchor``, node 0): an anchor whose entity row
has no cells still has a token to read out. It carries the entity table's name, the anchor
time's calendar features and, for a static target, the target column's name (the column it
hides), so the net knows which column of the entity's own table it is asked about.

Value encodings need no statistics: numbers ``sign(x) * log1p(|x|)``; timestamps (already days
relative to the anchor) the same; booleans ``+1 / -1``; categorical and text values through
stable hashed buckets (:mod:`rfm_runtime.hashing`); a null flag for every value. Numbers also
get Fourier features of the raw value, and timestamps (and the anchor token, with the anchor
time) calendar features (:mod:`rfm_runtime.value_features`).

Every token also carries its row's *counts* (``row_counts``): how many sampled rows were reached
from that row, in all and within the last :data:`COUNT_WINDOWS_DAYS` days before the anchor,
counted over all the anchor's cells before truncation. Softmax attention averages over what it
attends to, so without them the net cannot tell a plane with 3 flights from one with 16.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_runtime.errors import RfmError
from rfm_runtime.hashing import name_ids
from rfm_runtime.schema import CELLS
from rfm_runtime.value_features import AUX_WIDTH, CALENDAR_WIDTH, calendar

#: Token stypes; 0 is padding.
STYPE_IDS: dict[str, int] = {
    "anchor": 1,
    "numerical": 2,
    "categorical": 3,
    "text": 4,
    "timestamp": 5,
    "boolean": 6,
}
NUM_STYPES = len(STYPE_IDS) + 1
#: Windows of the recent-children counts in ``row_counts``, in days before the anchor time.
COUNT_WINDOWS_DAYS = (1.0, 7.0, 30.0)
#: Width of ``row_counts``: all children, then one count per window.
ROW_COUNT_WIDTH = 1 + len(COUNT_WINDOWS_DAYS)

AnchorKey = tuple[str, int]  # (entity_id, anchor_time in microseconds since the epoch)


@dataclass(frozen=True)
class TokenizerConfig:
    """How cells become tokens. Everything but ``batch_size``/``target_column`` is contract.

    Attributes:
        seq_len: tokens per anchor S, the anchor token included.
        batch_size: anchors per :class:`TokenBatch` B when streaming.
        value_buckets: buckets for categorical/text values (bucket 0 = none).
        value_hashes: hashes per value (multi-hash width).
        name_buckets: buckets for table and column names (bucket 0 = none).
        name_slots: features per name: the whole name, then up to ``name_slots - 1`` words.
        target_column: when set, cells of this column (or these columns) at hop 0 (the
            entity row) are dropped, so a static target, and outcomes known only with it, are
            never an input.
    """

    seq_len: int = 128
    batch_size: int = 32
    value_buckets: int = 4096
    value_hashes: int = 2
    name_buckets: int = 1024
    name_slots: int = 4
    target_column: str | tuple[str, ...] | None = None

    @property
    def hidden_columns(self) -> tuple[str, ...]:
        """Entity-row columns that are never inputs (from ``target_column``)."""
        if self.target_column is None:
            return ()
        if isinstance(self.target_column, str):
            return (self.target_column,)
        return tuple(self.target_column)

    def __post_init__(self) -> None:
        for name in ("seq_len", "batch_size", "value_buckets", "name_buckets"):
            if getattr(self, name) < 2:
                raise RfmError(f"TokenizerConfig.{name} must be >= 2, got {getattr(self, name)}")
        if not 1 <= self.value_hashes <= 8 or not 1 <= self.name_slots <= 8:
            raise RfmError("TokenizerConfig.value_hashes and name_slots must be in 1..8")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TokenizerConfig:
        """Build from a mapping; unknown keys are errors that suggest the right key."""
        from rfm_runtime.contract import check_keys

        check_keys(raw, [f.name for f in fields(cls)], "TokenizerConfig")
        return cls(**raw)


@dataclass(frozen=True)
class TokenBatch:
    """Tokens of B anchors; field names are the encoder's ONNX input names.

    Padding tokens have ``stype == 0`` and ``node_index == -1``.

    Attributes:
        stype: ``int64[B, S]`` :data:`STYPE_IDS`, 0 for padding.
        hop: ``int64[B, S]`` hop of the token's row (0 = the entity row).
        node_index: ``int64[B, S]`` row index within the anchor (0 = entity row), -1 padding.
        parent_index: ``int64[B, S]`` node index of the row this row was reached from, -1 none.
        column_index: ``int64[B, S]`` (table, column) index within the anchor; 0 = anchor token.
        table_name_ids: ``int64[B, S, name_slots]`` hashed table name features.
        column_name_ids: ``int64[B, S, name_slots]`` hashed column name features.
        value_ids: ``int64[B, S, value_hashes]`` hashed categorical/text value, 0 otherwise.
        value_num: ``float32[B, S]`` encoded number, timestamp or boolean; 0 otherwise.
        value_null: ``float32[B, S]`` 1 where the cell's value is null.
        rel_days: ``float32[B, S]`` ``sign(d) * log1p(|d|)`` of the row's time minus anchor time.
        rel_null: ``float32[B, S]`` 1 where the row has no time (static table).
        value_aux: ``float32[B, S, AUX_WIDTH]`` Fourier features of raw numbers and calendar
            features of timestamps and of the anchor time (:mod:`rfm_runtime.value_features`).
        row_counts: ``float32[B, S, ROW_COUNT_WIDTH]`` ``log1p`` of the number of sampled rows
            reached from the token's row (its children in the subgraph, which are capped by
            the fan-outs), in all and with a row time in each of :data:`COUNT_WINDOWS_DAYS`
            before the anchor; the anchor token has the entity row's.
    """

    stype: np.ndarray
    hop: np.ndarray
    node_index: np.ndarray
    parent_index: np.ndarray
    column_index: np.ndarray
    table_name_ids: np.ndarray
    column_name_ids: np.ndarray
    value_ids: np.ndarray
    value_num: np.ndarray
    value_null: np.ndarray
    rel_days: np.ndarray
    rel_null: np.ndarray
    value_aux: np.ndarray
    row_counts: np.ndarray

    @property
    def num_anchors(self) -> int:
        """B, the number of anchors."""
        return int(self.stype.shape[0])

    def feeds(self) -> dict[str, np.ndarray]:
        """The arrays by ONNX input name, for ``InferenceSession.run``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def input_dtypes() -> dict[str, str]:
        """ONNX input name -> numpy dtype name, in input order."""
        return {
            f.name: ("float32" if f.name in _FLOAT_FIELDS else "int64") for f in fields(TokenBatch)
        }

    def take(self, rows: Any) -> TokenBatch:
        """The tokens of a subset of anchors (rows of every array)."""
        return TokenBatch(**{k: v[rows] for k, v in self.feeds().items()})

    def trimmed(self) -> TokenBatch:
        """Drop trailing positions that are padding in every anchor (exact: masks ignore them)."""
        used = np.flatnonzero((self.node_index >= 0).any(axis=0))
        width = int(used[-1]) + 1 if len(used) else 1
        return (
            self if width == self.node_index.shape[1] else self.take((slice(None), slice(0, width)))
        )

    @staticmethod
    def concat(batches: Sequence[TokenBatch]) -> TokenBatch:
        """Stack batches with the same S along the anchor axis."""
        names = [f.name for f in fields(TokenBatch)]
        return TokenBatch(**{n: np.concatenate([getattr(b, n) for b in batches]) for n in names})


_FLOAT_FIELDS = ("value_num", "value_null", "rel_days", "rel_null", "value_aux", "row_counts")


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """``sign(x) * log1p(|x|)``: a robust scale for numbers of any magnitude (float64 in/out)."""
    return np.sign(x) * np.log1p(np.abs(x))


def empty_batch(num_anchors: int, config: TokenizerConfig) -> TokenBatch:
    """All-padding tokens for ``num_anchors`` anchors: ``[B, S]`` arrays."""
    b, s = num_anchors, config.seq_len
    ints = {n: np.zeros((b, s), np.int64) for n in ("stype", "hop")}
    ints |= {n: np.full((b, s), -1, np.int64) for n in ("node_index", "parent_index")}
    ints["column_index"] = np.full((b, s), -1, np.int64)
    names = {n: np.zeros((b, s, config.name_slots), np.int64) for n in ("table_name_ids",)}
    names["column_name_ids"] = np.zeros((b, s, config.name_slots), np.int64)
    widths = {"value_aux": (AUX_WIDTH,), "row_counts": (ROW_COUNT_WIDTH,)}
    floats = {n: np.zeros((b, s, *widths.get(n, ())), np.float32) for n in _FLOAT_FIELDS}
    vals = np.zeros((b, s, config.value_hashes), np.int64)
    return TokenBatch(**ints, **names, **floats, value_ids=vals)


def anchor_keys(anchors: pa.Table | pa.RecordBatch) -> list[AnchorKey]:
    """``(entity_id, anchor_time_us)`` keys of an ANCHORS-shaped table, in row order."""
    ids = anchors.column("entity_id").to_pylist()
    times = time_us(anchors.column("anchor_time"))
    return list(zip(ids, times.tolist(), strict=True))


def time_us(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Timestamps (any unit) or int64 microseconds -> ``int64[N]`` microseconds."""
    return np.asarray(pc.cast(col, pa.timestamp("us")).cast(pa.int64()).to_numpy(), np.int64)


def tokenize(
    cells: pa.RecordBatch | pa.Table,
    anchors: Sequence[AnchorKey] | None,
    config: TokenizerConfig,
) -> TokenBatch:
    """Tokenize the cells of a set of anchors (schema ``rfm_runtime.schema.CELLS``).

    Args:
        cells: cells whose anchors are contiguous (any order within an anchor; tokens are
            ordered by hop, then arrival, and truncated to ``seq_len`` keeping hop 0 first).
        anchors: output order as ``(entity_id, anchor_time)`` keys (time as microseconds or a
            ``datetime``); anchors without cells get only the anchor token. None: the order
            in which anchors first appear in ``cells``.
        config: the tokenizer settings.

    Returns:
        A :class:`TokenBatch` with one row per anchor.

    Raises:
        RfmError: on an unknown stype, non-contiguous anchors, or cells of an anchor not
            listed in ``anchors``.
    """
    table = pa.Table.from_batches([cells]) if isinstance(cells, pa.RecordBatch) else cells
    return tokenize_table(table, _normalise_keys(anchors), config)


def _normalise_keys(anchors: Sequence[Any] | None) -> list[AnchorKey] | None:
    if anchors is None:
        return None
    if not anchors:
        return []
    ids = [str(a[0]) for a in anchors]
    times = time_us(pa.array([a[1] for a in anchors], type=_time_type(anchors[0][1])))
    return list(zip(ids, times.tolist(), strict=True))


def _time_type(sample: Any) -> pa.DataType:
    return pa.int64() if isinstance(sample, int | np.integer) else pa.timestamp("us")


def tokenize_table(
    table: pa.Table, anchors: list[AnchorKey] | None, config: TokenizerConfig
) -> TokenBatch:
    """:func:`tokenize` for a ``pa.Table`` and normalised keys (see there)."""
    from rfm_runtime.token_fill import fill_tokens

    missing = [name for name in CELLS.names if name not in table.column_names]
    if missing:
        raise RfmError(
            f"cells lack column(s) {', '.join(missing)}; expected rfm_runtime.schema.CELLS"
        )
    # normalise types (int64 hop, decimal values, large or view strings) in one cheap cast
    table = table.select(CELLS.names).cast(CELLS)
    n = table.num_rows
    ent = table.column("entity_id").combine_chunks() if n else pa.array([], pa.string())
    times = time_us(table.column("anchor_time")) if n else np.zeros(0, np.int64)
    ent_codes = pc.dictionary_encode(ent)
    codes = ent_codes.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    change = np.ones(n, dtype=bool)
    change[1:] = (codes[1:] != codes[:-1]) | (times[1:] != times[:-1])
    starts = np.flatnonzero(change)
    dictionary = ent_codes.dictionary.to_pylist()
    run_keys = [(dictionary[codes[i]], int(times[i])) for i in starts]
    if len(set(run_keys)) != len(run_keys):
        dup = next(k for i, k in enumerate(run_keys) if k in run_keys[:i])
        raise RfmError(
            f"cells of anchor {dup!r} are not contiguous; CELLS must be ordered by anchor"
        )
    if anchors is None:
        out_keys = run_keys
        run_row = np.arange(len(run_keys), dtype=np.int64)
    else:
        out_keys = anchors
        position = {k: i for i, k in enumerate(anchors)}
        missing = [k for k in run_keys if k not in position]
        if missing:
            raise RfmError(
                f"cells for anchor {missing[0]!r} but it is not among the {len(anchors)} "
                "anchors asked for (anchors and cells must list the same anchors in order)"
            )
        run_row = np.array([position[k] for k in run_keys], dtype=np.int64)
    row = np.repeat(run_row, np.diff(np.r_[starts, n])) if n else np.zeros(0, np.int64)
    batch = empty_batch(len(out_keys), config)
    if n:
        fill_tokens(batch, table, row, config)
    if out_keys:
        times = np.array([k[1] for k in out_keys], np.int64)
        batch.value_aux[:, 0, -CALENDAR_WIDTH:] = calendar(times)
    if config.hidden_columns:  # a static target: the anchor token names the column to predict
        target = config.hidden_columns[0]
        batch.column_name_ids[:, 0] = name_ids(target, config.name_buckets, config.name_slots)
    batch.stype[:, 0] = STYPE_IDS["anchor"]
    batch.node_index[:, 0] = 0
    batch.column_index[:, 0] = 0
    return batch
