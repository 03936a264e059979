"""What the package's dbt Python models call: read rfm tables from DuckDB, stream out results.

dbt-duckdb hands a Python model its DuckDB connection (``session``) and relations for its
``dbt.ref`` s. The model returns a ``pyarrow.RecordBatchReader`` that dbt-duckdb writes while
pulling from it, so every read here goes through cursors opened up front (a query on
``session`` itself while the writer runs would block the connection), and nothing holds
more than one batch of query anchors at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from rfm_runtime.errors import RfmError
from rfm_runtime.schema import PREDICTIONS, embeddings_schema
from rfm_runtime.score import embed, score
from rfm_runtime.session import DEFAULT_ARTIFACT, RfmSession

from dbt_rfm import duck

log = logging.getLogger("dbt_rfm")

#: Order of the cells of one target's anchors (contiguous per anchor, hop 0 first).
CELL_ORDER = "c.anchor_time, c.entity_id, c.hop, c.table_name, c.row_key, c.column_name"


@dataclass(frozen=True)
class ScoringTarget:
    """One row of ``rfm_targets``: what the scorer needs to know about a target."""

    name: str
    task: str
    target_column: str | None
    top_k: int | None


@dataclass(frozen=True)
class ScoringInputs:
    """The package models a scoring model reads, as DuckDB relations (from ``dbt.ref``)."""

    targets: Any
    anchors: Any
    labels: Any
    cells: Any

    def sql(self, name: str) -> str:
        """The relation's SELECT, usable as a subquery on any cursor of the same database."""
        return f"({getattr(self, name).sql_query()})"


def dbt_invocation_id() -> str | None:
    """The running dbt invocation's id (dbt-duckdb runs Python models in dbt's process)."""
    try:
        from dbt_common.invocation import get_invocation_id
    except ImportError:  # scoring outside dbt (CLI, notebooks): no invocation
        return None
    return str(get_invocation_id())


def _artifact(settings: dict[str, Any] | None) -> Path:
    artifact = (settings or {}).get("artifact")
    return Path(artifact) if artifact else DEFAULT_ARTIFACT


def _targets(cur: Any, inputs: ScoringInputs) -> list[ScoringTarget]:
    sql = f"select target_name, task, target_column, top_k from {inputs.sql('targets')} order by 1"
    return [ScoringTarget(*r) for r in duck.rows(cur, sql)]


def _batches(cur: Any, sql: str, params: list[Any], batch_rows: int) -> Iterator[pa.RecordBatch]:
    yield from duck.arrow_reader(cur, sql, params, batch_rows)


class _Reads:
    """Cursors opened before the writer starts; one per concurrently open result."""

    def __init__(self, session: Any, inputs: ScoringInputs, batch_rows: int = 65_536) -> None:
        self.inputs = inputs
        self.meta_cur, self.anchor_cur, self.cell_cur = (session.cursor() for _ in range(3))
        self.batch_rows = batch_rows

    def context_labels(self, t: ScoringTarget) -> pa.Table:
        label = "label_items" if t.task == "ranking" else "label"
        return duck.arrow_table(
            self.meta_cur,
            f"select entity_id, anchor_time, {label} as label, label_class "
            f"from {self.inputs.sql('labels')} where target_name = ? "
            "order by anchor_time, entity_id",
            [t.name],
        )

    def count(self, t: ScoringTarget, role: str) -> int:
        return int(
            duck.scalar(
                self.meta_cur,
                f"select count(*) from {self.inputs.sql('anchors')} "
                "where target_name = ? and role = ?",
                [t.name, role],
            )
        )

    def anchors(self, t: ScoringTarget, role: str) -> Iterator[pa.RecordBatch]:
        return _batches(
            self.anchor_cur,
            f"select entity_id, anchor_time from {self.inputs.sql('anchors')} "
            "where target_name = ? and role = ? order by anchor_time, entity_id",
            [t.name, role],
            self.batch_rows,
        )

    def cells(self, t: ScoringTarget, role: str) -> Iterator[pa.RecordBatch]:
        return _batches(
            self.cell_cur,
            f"select c.* from {self.inputs.sql('cells')} as c "
            f"join (select distinct entity_id, anchor_time from {self.inputs.sql('anchors')} "
            "      where target_name = ? and role = ?) as a "
            "  on c.entity_id = a.entity_id and c.anchor_time = a.anchor_time "
            f"order by {CELL_ORDER}",
            [t.name, role],
            self.batch_rows,
        )


def predictions(
    session: Any,
    inputs: ScoringInputs,
    *,
    settings: dict[str, Any] | None = None,
    invocation_id: str | None = None,
    batch_size: int = 64,
) -> pa.RecordBatchReader:
    """Predictions of every declared target for its query anchors (schema ``PREDICTIONS``).

    Args:
        session: the model's DuckDB connection.
        inputs: relations of rfm_targets, rfm_anchors, rfm_labels and rfm_cells.
        settings: the model's ``config.meta.rfm``; ``artifact`` (a path prefix) overrides the
            net shipped in rfm_runtime.
        invocation_id: written into every row; default: the running dbt invocation's id.
        batch_size: query anchors per inference batch.
    """
    reads = _Reads(session, inputs)
    rfm = RfmSession.open(_artifact(settings))
    targets = _targets(reads.meta_cur, inputs)
    invocation_id = invocation_id or dbt_invocation_id()

    def batches() -> Iterator[pa.RecordBatch]:
        for t in targets:
            labels = reads.context_labels(t)
            if labels.num_rows == 0:
                raise RfmError(
                    f"target '{t.name}': no labelled context anchors in rfm_labels; widen "
                    "anchors.spine or check that the label window ends before the scoring time"
                )
            print(f"dbt-rfm: {t.name}: {labels.num_rows} context anchors, {rfm.providers[0]}")
            yield from score(
                rfm,
                reads.cells(t, "context"),
                labels,
                reads.cells(t, "query"),
                t.task,
                t.name,
                query_anchors=reads.anchors(t, "query"),
                target_column=t.target_column,
                top_k=t.top_k or 10,
                batch_size=batch_size,
                total_queries=reads.count(t, "query"),
                dbt_invocation_id=invocation_id,
                echo=True,
            )

    return pa.RecordBatchReader.from_batches(PREDICTIONS, batches())


def embeddings(
    session: Any,
    inputs: ScoringInputs,
    *,
    settings: dict[str, Any] | None = None,
    batch_size: int = 64,
) -> pa.RecordBatchReader:
    """Anchor embeddings of every target's query anchors (schema ``embeddings_schema(d)``)."""
    reads = _Reads(session, inputs)
    rfm = RfmSession.open(_artifact(settings))
    targets = _targets(reads.meta_cur, inputs)

    def batches() -> Iterator[pa.RecordBatch]:
        for t in targets:
            yield from embed(
                rfm,
                reads.cells(t, "query"),
                t.name,
                anchors=reads.anchors(t, "query"),
                target_column=t.target_column,
                batch_size=batch_size,
            )

    return pa.RecordBatchReader.from_batches(embeddings_schema(rfm.embedding_dim), batches())
