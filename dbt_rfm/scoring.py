"""What the package's dbt Python models call: read rfm tables from DuckDB, stream out results.

dbt-duckdb hands a Python model its DuckDB connection (``session``) and relations for its
``dbt.ref`` s. The model returns a ``pyarrow.RecordBatchReader`` that dbt-duckdb writes while
pulling from it, so every read here goes through cursors opened up front (a query on
``session`` itself while the writer runs would block the connection), and nothing holds
more than one batch of query anchors at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rfm_runtime.embed_cache import EmbeddingCache
from rfm_runtime.errors import RfmError
from rfm_runtime.schema import (
    ITEM_HISTORY,
    PREDICTIONS,
    SIBLING_HISTORY,
    TARGET_HISTORY,
    embeddings_schema,
)
from rfm_runtime.score import embed, score
from rfm_runtime.session import DEFAULT_ARTIFACT, RfmSession
from rfm_runtime.tokenize import anchor_keys

from dbt_rfm import duck
from dbt_rfm.aggregates import PREFIX, read_graph_target, target_aggregates, target_windows

log = logging.getLogger("dbt_rfm")

#: Order of the cells of one target's anchors (contiguous per anchor, hop 0 first).
CELL_ORDER = "c.anchor_time, c.entity_id, c.hop, c.table_name, c.row_key, c.column_name"


#: The columns of ``rfm_targets`` a :class:`ScoringTarget` is read from, in order.
TARGET_SELECT = "target_name, task, target_column, top_k"


#: The histories a target's readout may read, by task: the ``ScoringInputs`` field (the
#: package model ``rfm_<field>``) and its schema; a target has rows in one of them at most (a
#: binary target: sibling history when static, its own when over an aggregate).
HISTORY_SOURCES: dict[str, tuple[tuple[str, pa.Schema], ...]] = {
    "ranking": (("item_history", ITEM_HISTORY),),
    "regression": (("target_history", TARGET_HISTORY),),
    "binary": (("sibling_history", SIBLING_HISTORY), ("target_history", TARGET_HISTORY)),
}


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
    item_history: Any = None  # rfm_item_history: the ranking readout reads it
    target_history: Any = None  # rfm_target_history: the regression readout reads it
    sibling_history: Any = None  # rfm_sibling_history: the static binary readout reads it
    graph_spec: Any = None  # rfm_graph_spec: a tree head reading aggregates needs it

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


def _open(settings: dict[str, Any] | None) -> RfmSession:
    """The artifact of ``meta.rfm.artifact`` on ``meta.rfm.threads`` intra-op threads."""
    raw = str((settings or {}).get("threads") or "")
    if not raw:
        return RfmSession.open(_artifact(settings))
    if not raw.isdigit() or int(raw) < 1:
        raise RfmError(f"meta.rfm.threads = {raw!r}: expected a positive integer")
    return RfmSession.open(_artifact(settings), threads=int(raw))


def _targets(cur: Any, inputs: ScoringInputs) -> list[ScoringTarget]:
    sql = f"select {TARGET_SELECT} from {inputs.sql('targets')} order by 1"
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

    def history(self, t: ScoringTarget) -> pa.Table | None:
        """The history rows of ``t``'s anchors that its readout reads (:data:`HISTORY_SOURCES`):
        ``rfm_item_history`` for a ranking target, ``rfm_target_history`` for a regression
        target or a binary target over an aggregate, ``rfm_sibling_history`` for a static
        binary one; None when no model holds any for it (a regression target over AVG, ...)."""
        for source, schema in HISTORY_SOURCES.get(t.task, ()):
            if getattr(self.inputs, source) is None:
                continue
            table = duck.arrow_table(
                self.meta_cur,
                f"select {', '.join(schema.names)} from {self.inputs.sql(source)} "
                "where target_name = ?",
                [t.name],
            )
            if table.num_rows:
                return table.cast(schema)
        return None

    def aggregates(self, t: ScoringTarget, rfm: RfmSession) -> pa.Table | None:
        """The warehouse aggregates of ``t``'s query anchors that the artifact's tree head
        reads (decision 0020), computed in the warehouse; None when it reads none."""
        trees = rfm.trees
        if trees is None or trees.spec.target != t.name:
            return None
        names = [n for n in trees.spec.readout if n.startswith(PREFIX)]
        if not names:
            return None
        if self.inputs.graph_spec is None:
            raise RfmError(
                f"target '{t.name}': the tree head {trees.path.name} reads warehouse aggregates; "
                "pass graph_spec=dbt.ref('rfm_graph_spec') to ScoringInputs"
            )
        start = time.monotonic()
        spec, definition = read_graph_target(
            self.meta_cur, self.inputs.sql("graph_spec"), self.inputs.sql("targets"), t.name
        )
        anchors = duck.arrow_table(
            self.meta_cur,
            f"select entity_id, anchor_time from {self.inputs.sql('anchors')} "
            "where target_name = ? and role = 'query' order by anchor_time, entity_id",
            [t.name],
        )
        table = target_aggregates(
            self.meta_cur, spec, definition["entity"], target_windows(definition), anchors, names
        )
        print(f"dbt-rfm: {t.name}: {len(names)} warehouse aggregates of {anchors.num_rows} "
              f"query anchors ({time.monotonic() - start:.0f}s)")  # fmt: skip
        return table

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

    def query_cached(self, t: ScoringTarget, cache: EmbeddingCache, rfm: RfmSession) -> bool:
        """Whether ``cache`` holds every query anchor of ``t`` (reads the anchors through)."""
        config = rfm.tokenizer_config(target_column=t.target_column)
        held = True
        for batch in self.anchors(t, "query"):
            held = held and cache.holds(anchor_keys(batch), config)  # read on: free the cursor
        return held

    def cells(self, t: ScoringTarget, roles: list[str]) -> _RoleStreams:
        """The cells of ``t``'s anchors of ``roles``, from one query (its fixed cost, evaluating
        the ``rfm_cells`` view, is most of the time), ordered by role, then anchor."""
        marks = ", ".join("?" for _ in roles)
        return _RoleStreams(
            _batches(
                self.cell_cur,
                f"select c.*, a.role as {_ROLE} from {self.inputs.sql('cells')} as c "
                "join (select distinct entity_id, anchor_time, role "
                f"      from {self.inputs.sql('anchors')} "
                f"      where target_name = ? and role in ({marks})) as a "
                "  on c.entity_id = a.entity_id and c.anchor_time = a.anchor_time "
                f"order by a.role, {CELL_ORDER}",
                [t.name, *roles],
                self.batch_rows,
            )
        )


_ROLE = "rfm_role_"


class _RoleStreams:
    """One cell stream ordered by role, handed out as one iterator per role, in role order.

    Each role's iterator ends where the next role's cells begin; read them in the stream's
    order (``score`` encodes all context cells before it reads query cells).
    """

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self._batches = batches
        self._pending: pa.RecordBatch | None = None

    def role(self, role: str) -> Iterator[pa.RecordBatch]:
        """CELLS batches of ``role`` (the role column dropped)."""
        while True:
            batch, self._pending = self._pending or next(self._batches, None), None
            if batch is None:
                return
            same = pc.equal(batch.column(_ROLE), role).to_numpy(zero_copy_only=False)
            n = len(same) if same.all() else int(np.argmin(same))
            if n:
                yield batch.slice(0, n).drop_columns([_ROLE])
            if n < batch.num_rows:
                self._pending = batch.slice(n)
                return


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
            net shipped in rfm_runtime; ``threads`` sets onnxruntime's intra-op threads
            (default: env var ``RFM_THREADS``, else one per physical core).
        invocation_id: written into every row; default: the running dbt invocation's id.
        batch_size: query anchors per inference batch.
    """
    reads = _Reads(session, inputs)
    rfm = _open(settings)
    targets = _targets(reads.meta_cur, inputs)
    invocation_id = invocation_id or dbt_invocation_id()
    cache = EmbeddingCache()  # targets that share anchors encode them once

    def batches() -> Iterator[pa.RecordBatch]:
        for t in targets:
            labels = reads.context_labels(t)
            if labels.num_rows == 0:
                raise RfmError(
                    f"target '{t.name}': no labelled context anchors in rfm_labels; widen "
                    "anchors.spine or check that the label window ends before the scoring time"
                )
            print(f"dbt-rfm: {t.name}: {labels.num_rows} context anchors, {rfm.providers[0]}")
            # anchors that earlier targets encoded need no cells: tokens of none find them
            config = rfm.tokenizer_config(target_column=t.target_column)
            skip_context = cache.holds(anchor_keys(labels), config)
            skip_query = reads.query_cached(t, cache, rfm)
            if skip_context or skip_query:
                print(
                    f"dbt-rfm: {t.name}: cells not read (already encoded): context "
                    f"{'skipped' if skip_context else 'read'}, query "
                    f"{'skipped' if skip_query else 'read'}"
                )
            roles = [
                r for r, skip in (("context", skip_context), ("query", skip_query)) if not skip
            ]
            cells = reads.cells(t, roles) if roles else _RoleStreams(iter(()))
            yield from score(
                rfm,
                cells.role("context"),
                labels,
                cells.role("query"),
                t.task,
                t.name,
                query_anchors=reads.anchors(t, "query"),
                target_column=t.target_column,
                history=reads.history(t),
                aggregates=reads.aggregates(t, rfm),
                top_k=t.top_k or 10,
                batch_size=batch_size,
                total_queries=reads.count(t, "query"),
                dbt_invocation_id=invocation_id,
                echo=True,
                cache=cache,
            )
        if cache.hits:
            print(f"dbt-rfm: {cache.hits} anchor encodings reused across targets")

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
    rfm = _open(settings)
    targets = _targets(reads.meta_cur, inputs)
    cache = EmbeddingCache()

    def batches() -> Iterator[pa.RecordBatch]:
        for t in targets:
            yield from embed(
                rfm,
                reads.cells(t, ["query"]).role("query"),
                t.name,
                anchors=reads.anchors(t, "query"),
                target_column=t.target_column,
                batch_size=batch_size,
                cache=cache,
            )

    return pa.RecordBatchReader.from_batches(embeddings_schema(rfm.embedding_dim), batches())
