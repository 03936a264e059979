"""A deterministic subsample of the val and test anchors, shared by every arm of a run.

The foundation model scores ~100-200 anchors/s on 2 cores, so full val/test splits (up to
~10k rows) would take too long; every arm (baselines included) then sees the same rows.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from bench.accuracy.tasks import TaskSplits
from dbt_rfm.errors import RfmError


def keep_rows(table: pa.Table, n: int, seed: int = 0) -> np.ndarray:
    """Ascending int64 indices of at most ``n`` rows: the smallest
    ``md5(seed:entity_id:anchor_time)``, so the choice does not depend on row order."""
    if n < 1:
        raise RfmError(f"--max-eval must be >= 1, found {n}")
    if table.num_rows <= n:
        return np.arange(table.num_rows, dtype=np.int64)
    ids = table.column("entity_id").to_pylist()
    times = table.column("anchor_time").cast(pa.int64()).to_pylist()
    h = [
        hashlib.md5(f"{seed}:{e}:{t}".encode()).hexdigest() for e, t in zip(ids, times, strict=True)
    ]
    order = np.argsort(np.array(h), kind="stable")
    return np.sort(order[:n]).astype(np.int64)


def subsample_eval(splits: TaskSplits, n: int, seed: int = 0) -> TaskSplits:
    """``splits`` with val and test cut to at most ``n`` rows each (train untouched)."""
    val = splits.val.take(pa.array(keep_rows(splits.val, n, seed)))
    test = splits.test.take(pa.array(keep_rows(splits.test, n, seed)))
    return TaskSplits(task=splits.task, train=splits.train, val=val, test=test)
