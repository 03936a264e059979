"""Where the scoring time goes: the pieces of ``score`` timed one by one on the same anchors.

For each target of the built demo, the first ``n`` query anchors (in scoring order) go through
(1) reading their cells from the ``rfm_cells`` view (SQL), (2) ``iter_token_batches``,
(3) ``RfmSession.encode`` (through one ``EmbeddingCache`` shared by the targets, as in
``dbt_rfm.scoring``) plus the ICL head and decoding (inference) and (4) materialising the
prediction batches into DuckDB (write). Sampling itself is the ``rfm_subgraph`` node of the
dbt build, prorated per sampled anchor. The context is encoded once per target, untimed here
(its cost per anchor is that of (2)+(3)), and reported as context anchors per query anchor.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from rfm_runtime.embed_cache import EmbeddingCache
from rfm_runtime.labels import decode
from rfm_runtime.ranking import RankingLabels, decode_ranking, head_logits
from rfm_runtime.schema import PREDICTIONS
from rfm_runtime.score import _predictions, encode_context
from rfm_runtime.session import RfmSession
from rfm_runtime.token_stream import iter_token_batches
from rfm_runtime.tokenize import anchor_keys

from bench.scoring.common import CELL_ORDER, THREADS

PIECES = ("sample_sql", "read_cells_sql", "tokenize", "inference", "write")


def _anchors_sql(target: str, role: str, limit: int) -> str:
    return (
        "select entity_id, anchor_time from rfm_anchors "
        f"where target_name = '{target}' and role = '{role}' "
        f"order by anchor_time, entity_id limit {limit}"
    )


def _cells_sql(anchors_sql: str) -> str:
    return (
        f"select c.* from rfm_cells as c join ({anchors_sql}) as a "
        "on c.entity_id = a.entity_id and c.anchor_time = a.anchor_time "
        f"order by {CELL_ORDER}"
    )


def _labels_sql(target: str, task: str, limit: int) -> str:
    label = "label_items" if task == "ranking" else "label"
    return (
        f"select entity_id, anchor_time, {label} as label, label_class from rfm_labels "
        f"where target_name = '{target}' order by anchor_time, entity_id limit {limit}"
    )


def time_target(
    con: Any,
    rfm: RfmSession,
    target: tuple[str, str, str | None],
    n: int,
    n_context: int,
    cache: EmbeddingCache | None = None,
) -> dict[str, float]:
    """Seconds per piece for the first ``n`` query anchors of one target.

    Args:
        con: read-only connection to the built demo database.
        rfm: the opened artifact.
        target: ``(name, task, target_column)`` from ``rfm_targets``.
        n: query anchors to time.
        n_context: labelled context anchors to encode (untimed) for the head.
        cache: embeddings shared across targets, as ``dbt_rfm.scoring`` shares them.

    Returns:
        ``{piece: seconds}`` for read_cells_sql, tokenize, inference, write, plus ``anchors``.
    """
    name, task, column = target
    config = rfm.tokenizer_config(64, column)
    labels_tab = con.sql(_labels_sql(name, task, n_context)).to_arrow_table()
    ctx_cells = con.sql(_cells_sql(_labels_sql(name, task, n_context))).to_arrow_table()
    context, labels = encode_context(rfm, ctx_cells.to_batches(), labels_tab, task, config, cache)

    t0 = time.perf_counter()
    anchors = con.sql(_anchors_sql(name, "query", n)).to_arrow_table()
    cells = con.sql(_cells_sql(_anchors_sql(name, "query", n))).to_arrow_table()
    t_read = time.perf_counter() - t0

    t0 = time.perf_counter()
    chunks = list(iter_token_batches(cells.to_batches(65_536), config, anchors.to_batches()))
    t_tok = time.perf_counter() - t0

    t0 = time.perf_counter()
    decoded = []
    for chunk in chunks:
        keys = anchor_keys(chunk.anchors)
        query = cache.encode(rfm, chunk.tokens, keys, config) if cache else rfm.encode(chunk.tokens)
        if isinstance(labels, RankingLabels):
            scores = head_logits(rfm.class_probs, query, context, labels)  # readout: elementwise
            decoded.append(decode_ranking(labels.items, scores, 10))
        else:
            decoded.append(decode(labels, rfm.class_probs(query, context, labels)))
    t_inf = time.perf_counter() - t0

    t0 = time.perf_counter()
    stamp = _now()
    batches = [
        _predictions(c, d, name, rfm, stamp, None) for c, d in zip(chunks, decoded, strict=True)
    ]
    out = duckdb.connect()
    out.register("batches", pa.RecordBatchReader.from_batches(PREDICTIONS, iter(batches)))
    out.execute("create table predictions as select * from batches")
    out.close()
    t_write = time.perf_counter() - t0
    return {
        "anchors": float(anchors.num_rows),
        "read_cells_sql": t_read,
        "tokenize": t_tok,
        "inference": t_inf,
        "write": t_write,
    }


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def breakdown(
    db: Path, artifact: Path, n: int, n_context: int, sample_s_per_anchor: float
) -> dict[str, Any]:
    """Per-target and overall milliseconds per query anchor for each piece, and shares.

    Args:
        db: the built demo DuckDB file.
        artifact: the artifact prefix.
        n: query anchors per target.
        n_context: context anchors per target (head input; not timed).
        sample_s_per_anchor: ``rfm_subgraph`` node seconds / sampled anchors (dbt build).
    """
    con = duckdb.connect(str(db), read_only=True)
    con.execute("set enable_progress_bar = false")
    rfm = RfmSession.open(artifact, threads=THREADS)
    targets = con.execute(
        "select target_name, task, target_column from rfm_targets order by 1"
    ).fetchall()
    per_target: dict[str, dict[str, float]] = {}
    totals = dict.fromkeys(PIECES, 0.0)
    anchors = 0.0
    cache = EmbeddingCache()  # as in dbt_rfm.scoring: targets sharing anchors encode them once
    for t in targets:
        r = time_target(con, rfm, t, n, n_context, cache)
        r["sample_sql"] = sample_s_per_anchor * r["anchors"]
        per_target[t[0]] = {k: round(v, 4) for k, v in r.items()}
        anchors += r["anchors"]
        for p in PIECES:
            totals[p] += r[p]
    con.close()
    total = sum(totals.values())
    return {
        "anchors": int(anchors),
        "ms_per_anchor": {p: round(1000 * totals[p] / anchors, 3) for p in PIECES},
        "share": {p: round(totals[p] / total, 3) for p in PIECES},
        "anchors_per_s_sum_of_pieces": round(anchors / total, 1),
        "per_target_s": per_target,
    }
