"""A target's labelled context anchors and their cells, read from a dbt-built DuckDB file.

``dbt build`` leaves the package models ``rfm_targets``, ``rfm_anchors``, ``rfm_labels`` and
``rfm_cells`` in the database. Fine-tuning reads the labels of the target's *context* anchors
(``rfm_labels`` joined to ``rfm_anchors`` with ``role = 'context'``: query anchors have no
observed label) and streams their cells in anchor order into the tokenizer serving uses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from rfm_runtime.schema import ANCHORS
from rfm_runtime.token_stream import iter_token_batches
from rfm_runtime.tokenize import TokenBatch, TokenizerConfig, time_us
from rfm_runtime.trees import name_labels

from dbt_rfm import duck
from dbt_rfm.aggregates import read_graph_target, target_aggregates, target_windows
from dbt_rfm.errors import RfmError, did_you_mean
from dbt_rfm.finetune.split import subsample
from dbt_rfm.labels import UNIT_SECONDS
from dbt_rfm.scoring import CELL_ORDER, HISTORY_SOURCES, TARGET_SELECT, ScoringTarget

#: The package models fine-tuning reads.
TABLES = ("rfm_targets", "rfm_anchors", "rfm_labels", "rfm_cells")


@dataclass(frozen=True)
class LabelledAnchors:
    """One target's labelled context anchors, tokenized.

    Attributes:
        target: the target's row of ``rfm_targets``.
        anchors: ``entity_id, anchor_time`` (schema ``ANCHORS``), A rows by time, then id.
        labels: A labels: float (binary 0/1, regression), str (multiclass) or list[str]
            (ranking items).
        tokens: ``[A, S]`` tokens, row i for anchor i.
    """

    target: ScoringTarget
    anchors: pa.Table
    labels: list[Any]
    tokens: TokenBatch

    @property
    def anchor_us(self) -> np.ndarray:
        """``int64[A]`` anchor times in microseconds since the epoch."""
        return time_us(self.anchors["anchor_time"])


def connect(path: str | Path) -> Any:
    """Open the DuckDB file read-only (a dbt run may not hold it for writing meanwhile)."""
    import duckdb

    p = Path(path)
    if not p.is_file():
        raise RfmError(f"finetune: no DuckDB file at {p}; run `dbt build` first (--duckdb PATH)")
    try:
        con = duckdb.connect(str(p), read_only=True)
    except duckdb.Error as exc:
        raise RfmError(f"finetune: cannot open {p} read-only: {exc}") from exc
    con.execute("set enable_progress_bar = false")  # progress lines are ours
    return con


def find_schema(con: Any, schema: str | None = None) -> str:
    """The schema that holds every table of :data:`TABLES` (``schema`` when given).

    Raises:
        RfmError: naming the missing package models, or the schemas to choose from.
    """
    found: dict[str, set[str]] = {}
    for s, t in duck.rows(
        con,
        "select table_schema, table_name from information_schema.tables "
        f"where table_name in ({', '.join('?' for _ in TABLES)})",
        list(TABLES),
    ):
        found.setdefault(str(s), set()).add(str(t))
    complete = sorted(s for s, names in found.items() if names >= set(TABLES))
    if schema is not None:
        if schema in complete:
            return schema
        lacking = sorted(set(TABLES) - found.get(schema, set()))
        raise RfmError(
            f"finetune: schema '{schema}' lacks the package model(s) {', '.join(lacking)}"
            f"{did_you_mean(schema, complete)}; run `dbt build` first"
        )
    if len(complete) == 1:
        return complete[0]
    if not complete:
        have = set().union(*found.values()) if found else set()
        lacking = sorted(set(TABLES) - have)
        raise RfmError(
            f"finetune: the database lacks the dbt_rfm package model(s) {', '.join(lacking)}; "
            "run `dbt build` (it builds rfm_targets, rfm_anchors, rfm_labels and rfm_cells)"
        )
    raise RfmError(
        f"finetune: the package models are in several schemas ({', '.join(complete)}); "
        "choose one with --schema"
    )


def read_target(con: Any, schema: str, name: str) -> ScoringTarget:
    """The row of ``rfm_targets`` named ``name``.

    Raises:
        RfmError: when no target has that name (suggesting the closest declared one).
    """
    rows = duck.rows(
        con,
        f'select {TARGET_SELECT} from "{schema}".rfm_targets '
        "where target_name is not null order by 1",
    )
    targets = {r[0]: ScoringTarget(*r) for r in rows}
    if name not in targets:
        declared = ", ".join(targets) or "none"
        raise RfmError(
            f"finetune: model 'rfm_targets' has no target '{name}'"
            f"{did_you_mean(name, list(targets))}; declared targets: {declared}"
        )
    return targets[name]


def label_known(con: Any, schema: str, name: str, anchor_us: np.ndarray) -> np.ndarray | None:
    """When each label of target ``name`` became known, in microseconds: its anchor time plus
    the end of the target's window (``rfm_targets.definition``; a month counts as the mean
    month). None for a target without a window (static: known at its anchor)."""
    found = duck.rows(
        con, f'select definition from "{schema}".rfm_targets where target_name = ?', [name]
    )
    agg = json.loads(found[0][0]).get("aggregate") if found and found[0][0] else None
    if not agg:
        return None
    return np.asarray(anchor_us, np.int64) + int(agg["end"]) * UNIT_SECONDS[agg["unit"]] * 10**6


def read_labelled(
    con: Any,
    schema: str,
    target: ScoringTarget,
    tokenizer: TokenizerConfig,
    max_anchors: int,
    seed: int = 0,
) -> LabelledAnchors:
    """Labelled context anchors of ``target`` and their tokens.

    Args:
        con: DuckDB connection.
        schema: schema of the package models (:func:`find_schema`).
        target: the target.
        tokenizer: tokenizer settings of the net (``target_column`` set from the target).
        max_anchors: keep at most this many anchors (seeded subsample, kept in time order).
        seed: seeds the subsample.

    Raises:
        RfmError: when the target has no labelled context anchor.
    """
    label = "l.label_items" if target.task == "ranking" else "l.label"
    labels = duck.arrow_table(
        con,
        f"select l.entity_id, l.anchor_time, {label} as label, l.label_class "
        f'from "{schema}".rfm_labels as l '
        f'join (select distinct entity_id, anchor_time from "{schema}".rfm_anchors '
        "      where target_name = ? and role = 'context') as a "
        "  on l.entity_id = a.entity_id and l.anchor_time = a.anchor_time "
        "where l.target_name = ? order by l.anchor_time, l.entity_id",
        [target.name, target.name],
    )
    values = _label_values(labels, target.task)
    keep = np.array([v is not None for v in values], dtype=bool)
    rows = np.flatnonzero(keep)
    rows = rows[subsample(len(rows), max_anchors, seed)]
    if not len(rows):
        raise RfmError(
            f"finetune: target '{target.name}': no labelled context anchors in rfm_labels "
            "(model 'rfm_labels', column 'label'); widen anchors.spine"
        )
    anchors = labels.select(["entity_id", "anchor_time"]).take(pa.array(rows)).cast(ANCHORS)
    con.register("_rfm_finetune_anchors", anchors)
    try:
        cells = duck.arrow_reader(
            con,
            f'select c.* from "{schema}".rfm_cells as c '
            "join _rfm_finetune_anchors as a "
            "  on c.entity_id = a.entity_id and c.anchor_time = a.anchor_time "
            f"order by {CELL_ORDER}",
        )
        cfg = TokenizerConfig.from_dict(
            {**vars(tokenizer), "batch_size": 512, "target_column": target.target_column}
        )
        chunks = [c.tokens for c in iter_token_batches(cells, cfg, anchors.to_batches(512))]
    finally:
        con.unregister("_rfm_finetune_anchors")
    return LabelledAnchors(
        target=target,
        anchors=anchors,
        labels=[values[i] for i in rows],
        tokens=TokenBatch.concat(chunks),
    )


def read_history(con: Any, schema: str, target: ScoringTarget) -> pa.Table | None:
    """The history rows of ``target``'s anchors that its readout reads, as scoring reads them
    (:data:`dbt_rfm.scoring.HISTORY_SOURCES`); None when the models are absent or hold none."""
    for source, columns in HISTORY_SOURCES.get(target.task, ()):
        model = f"rfm_{source}"
        present = duck.rows(
            con,
            "select 1 from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, model],
        )
        if not present:
            continue
        table = duck.arrow_table(
            con,
            f'select {", ".join(columns.names)} from "{schema}".{model} where target_name = ?',
            [target.name],
        )
        if table.num_rows:
            return table.cast(columns)
    return None


def read_aggregates(
    con: Any, schema: str, target: ScoringTarget, anchors: pa.Table, echo: Callable[[str], None]
) -> pa.Table | None:
    """The warehouse aggregates of ``anchors`` that ``target``'s tree head reads (decision
    0020): every path of two hops over the declared graph (``rfm_graph_spec``) from the
    target's entity; None when the entity has a composite key."""
    start = time.monotonic()
    echo(f"finetune {target.name}: warehouse aggregates of {anchors.num_rows} anchors "
         "(one query per link path; a minute or more) ...")  # fmt: skip
    spec, definition = read_graph_target(
        con, f'"{schema}".rfm_graph_spec', f'"{schema}".rfm_targets', target.name
    )
    table = target_aggregates(con, spec, definition["entity"], target_windows(definition), anchors)
    if table is None:
        echo(f"finetune {target.name}: no warehouse aggregates (the entity's key is composite)")
    else:
        echo(f"finetune {target.name}: {table.num_columns - 2} warehouse aggregates of "
             f"{table.num_rows} anchors ({time.monotonic() - start:.0f}s)")  # fmt: skip
    return table


def cell_names(con: Any, schema: str, tokenizer: TokenizerConfig) -> dict[tuple[int, ...], str]:
    """Hashed name ids -> name of every table and column in ``rfm_cells``: the tree head's
    report names its features with them."""
    rows = duck.rows(
        con,
        f'select distinct column_name from "{schema}".rfm_cells union '
        f'select distinct table_name from "{schema}".rfm_cells',
    )
    return name_labels((str(r[0]) for r in rows), tokenizer)


def _label_values(labels: pa.Table, task: str) -> list[Any]:
    if task == "ranking":
        return [None if v is None else [str(x) for x in v] for v in labels["label"].to_pylist()]
    if task == "multiclass":
        cls = labels["label_class"].to_pylist()
        if any(v is not None for v in cls):
            return cls
        return [None if v is None else str(v) for v in labels["label"].to_pylist()]
    return [None if v is None else float(v) for v in labels["label"].to_pylist()]
