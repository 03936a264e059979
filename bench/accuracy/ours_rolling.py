"""Zero-shot with a rolling context: the freshest labels known at each query time.

``ours_zero_shot`` takes its context from the training split only, the information the
LightGBM arms train on. Scoring in dbt does what in-context learning is for instead: the
context of a scoring run is the most recent anchors whose label window has closed by the
scoring time (``rfm_anchor_sql``: ``anchor_time + window <= scoring time``). This arm does the
same per query time ``t``: context = at most ``ctx.max_context`` labelled anchors of any split
with ``anchor_time + window <= t`` and the weekday and time of day of ``t`` (the spine's rule,
decision 0009), the most recent first. No label it reads ends after ``t``
(the ``previous_label`` arm reads the same kind of label: the one at ``t - window``), but it
sees later labels than the training split, so it is reported as its own arm. Temporal tasks
only (a static task's context has no window that closes).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rfm_runtime.session import RfmSession

from bench.accuracy.arms import ArmContext, ArmResult
from bench.accuracy.ours import (
    OursArm,
    anchor_cells,
    artifact_path,
    assemble,
    history,
    prepare,
    score_queries,
    split_context,
)


class Rolling(OursArm):
    """In-context learning only; per query time, the freshest fully observed context."""

    name = "ours_zero_shot_rolling"
    temporal_only = True

    def run(self, ctx: ArmContext) -> ArmResult:  # noqa: D102
        task = ctx.splits.task
        if task.window is None:
            raise ValueError(f"{self.name}: task '{task.name}' is static (no label window)")
        prep = prepare(ctx)
        session = RfmSession.open(artifact_path())
        full = ctx.full_splits or ctx.splits
        pool = pa.concat_tables([full.train, full.val, full.test])
        pool_end = pc.add(pool.column("anchor_time"), pa.scalar(task.window))
        queries = pa.concat_tables([ctx.splits.val, ctx.splits.test])
        query_cells = pa.concat_tables([prep.cells["val"], prep.cells["test"]])
        cell_times = query_cells.column("anchor_time")
        features = score_s = 0.0
        found: dict[tuple[str, int], Any] = {}
        sizes = []
        for t in sorted(set(queries.column("anchor_time").to_pylist())):
            t0 = time.perf_counter()
            known = pool.filter(pc.less_equal(pool_end, pa.scalar(t, pool_end.type)))
            q_times = queries.column("anchor_time")
            now = queries.filter(pc.equal(q_times, pa.scalar(t, q_times.type)))
            context = known.take(pa.array(split_context(known, now, ctx.max_context)))
            c_cells = anchor_cells(prep.index, context, task.entity_table)
            q_cells = query_cells.filter(pc.equal(cell_times, pa.scalar(t, cell_times.type)))
            past = history(ctx, prep.spec, context, now)
            t1 = time.perf_counter()
            found |= score_queries(session, ctx, c_cells, context, q_cells, past)
            features += t1 - t0
            score_s += time.perf_counter() - t1
            sizes.append(context.num_rows)
        val, test, covered = assemble(ctx, found)
        params = {
            "artifact": str(artifact_path()),
            "model_version": session.model_version,
            "context_per_time": int(np.median(sizes)),
            "query_times": len(sizes),
            "coverage": round(covered, 4),
        }
        seconds = {"features": features, "train": 0.0, "score": score_s}
        return ArmResult(val, test, seconds, params)
