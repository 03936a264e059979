"""LightGBM for ranking tasks (plane -> next destinations): score candidate pairs, rank them.

Candidates of an anchor ``(plane, t)``: destinations the plane flew to in ``(t - 90d, t]`` and
the 10 busiest destinations of ``(t - 7d, t]``. Pair features are time-aware SQL aggregates
(flights of this plane to this destination in 7 / 30 / 90 days, days since the last one,
the destination's traffic in the last 7 days, the plane's total in 30 days) plus the plane's
own columns. A binary model (pair in the label or not), trained on the pairs of a seeded sample of
the training anchors (:data:`MAX_TRAIN_PAIRS`), is tuned on validation pairs; each
anchor's candidates are ranked by its score.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.accuracy.entity_columns import encode_categories, entity_columns
from bench.accuracy.lgbm import fit_tuned
from bench.accuracy.tasks import SPLITS
from dbt_rfm.aggregates import ANCHORS, register_anchors

#: Training pairs are subsampled (whole anchors, seeded) to about this many, for runtime.
MAX_TRAIN_PAIRS = 200_000

PAIR_SQL = f"""
    with a as (select anchor_idx, entity_id, anchor_time from {ANCHORS}),
    hist as (
        select a.anchor_idx, a.anchor_time as t, f.dest, f.scheduled_departure as s
        from a
        join flights as f
          on f.tailnum = a.entity_id
         and f.scheduled_departure <= a.anchor_time
         and f.scheduled_departure > a.anchor_time - interval 90 day
        where f.dest is not null
    ),
    plane_dest as (
        select anchor_idx, dest,
               count(*) filter (s > t - interval 7 day) as n_7d,
               count(*) filter (s > t - interval 30 day) as n_30d,
               count(*) as n_90d,
               date_diff('minute', max(s), any_value(t)) / 1440.0 as days_since
        from hist
        group by all
    ),
    times as (select distinct anchor_time from a),
    traffic as (
        select tm.anchor_time, f.dest, count(*) as dest_7d
        from times as tm
        join flights as f
          on f.scheduled_departure <= tm.anchor_time
         and f.scheduled_departure > tm.anchor_time - interval 7 day
        where f.dest is not null
        group by all
    ),
    busiest as (
        select * from traffic
        qualify row_number() over (partition by anchor_time order by dest_7d desc, dest) <= 10
    ),
    candidates as (
        select anchor_idx, dest from plane_dest
        union
        select a.anchor_idx, b.dest from a join busiest as b using (anchor_time)
    )
    select c.anchor_idx, c.dest,
           coalesce(p.n_7d, 0)::double as n_7d,
           coalesce(p.n_30d, 0)::double as n_30d,
           coalesce(p.n_90d, 0)::double as n_90d,
           p.days_since::double as days_since,
           coalesce(tr.dest_7d, 0)::double as dest_7d,
           (sum(coalesce(p.n_30d, 0)) over (partition by c.anchor_idx))::double as plane_30d
    from candidates as c
    join a using (anchor_idx)
    left join plane_dest as p using (anchor_idx, dest)
    left join traffic as tr on tr.anchor_time = a.anchor_time and tr.dest = c.dest
    order by c.anchor_idx, c.dest
"""


def run_pairs(ctx: Any, k: int, popular: list[str]) -> tuple[Any, Any, dict[str, float], dict]:
    """Fit and rank; returns (val rankings, test rankings, seconds, params).

    Args:
        ctx: the :class:`bench.accuracy.arms.ArmContext`.
        k: ranking length.
        popular: ids ranked by popularity in training labels, to pad short rankings.
    """
    from bench.accuracy.arms import stacked_splits

    t0 = time.perf_counter()
    stacked, rows = stacked_splits(ctx.splits)
    register_anchors(ctx.con, stacked)
    try:
        pairs = ctx.con.sql(PAIR_SQL).to_arrow_table()
    finally:
        ctx.con.unregister(ANCHORS)
    idx = pairs.column("anchor_idx").to_numpy()
    dest = np.asarray(pairs.column("dest").to_pylist(), dtype=object)
    names = [c for c in pairs.column_names if c not in ("anchor_idx", "dest")]
    x_pair = np.column_stack([pairs.column(c).to_numpy(zero_copy_only=False) for c in names])
    own = entity_columns(ctx.con, ctx.splits.task.entity_table, stacked)
    is_train = np.zeros(stacked.num_rows, dtype=bool)
    is_train[rows["train"]] = True
    own_x = np.column_stack(
        list(own.numeric.values())
        + [encode_categories(v, is_train) for v in own.categorical.values()]
    )
    dest_code = encode_categories(dest, is_train[idx])
    x = np.column_stack([x_pair, own_x[idx], dest_code])
    cat_idx = [x_pair.shape[1] + len(own.numeric) + i for i in range(len(own.categorical))]
    cat_idx.append(x.shape[1] - 1)
    all_labels: list[set[str]] = []
    for s in SPLITS:
        all_labels += [set(v) for v in ctx.splits.split(s).column("label").to_pylist()]
    y = np.array([d in all_labels[i] for i, d in zip(idx, dest, strict=True)], dtype=np.float64)
    split_of = np.empty(stacked.num_rows, dtype=object)
    for s in SPLITS:
        split_of[rows[s]] = s
    pair_split = split_of[idx]
    t1 = time.perf_counter()
    tr, va, te = (pair_split == s for s in SPLITS)
    tr &= _anchor_sample(idx, tr, MAX_TRAIN_PAIRS)
    fitted = fit_tuned("binary", x[tr], y[tr], x[va], y[va], cat_idx)
    t2 = time.perf_counter()
    out = {}
    for s, mask in (("test", te), ("val", va)):
        score = fitted.predict(x[mask])
        out[s] = _rank(idx[mask], dest[mask], score, rows[s], k, popular)
    t3 = time.perf_counter()
    params = fitted.params | {"pairs_train": int(tr.sum()), "features": x.shape[1]}
    recall = float(np.mean(y[te])) if te.any() else 0.0
    params["test_pair_positive_rate"] = round(recall, 4)
    return (
        out["val"],
        out["test"],
        {"features": t1 - t0, "train": t2 - t1, "score": t3 - t2},
        params,
    )


def _anchor_sample(idx: np.ndarray, mask: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """bool ``[P]``: pairs of a seeded random subset of the anchors in ``mask``, about ``limit``
    pairs in all (every pair of a chosen anchor is kept)."""
    n = int(mask.sum())
    if n <= limit:
        return np.ones_like(mask)
    anchors = np.unique(idx[mask])
    rng = np.random.default_rng(seed)
    keep = rng.choice(anchors, size=int(anchors.size * limit / n), replace=False)
    return np.isin(idx, keep)


def _rank(
    idx: np.ndarray,
    dest: np.ndarray,
    score: np.ndarray,
    rows: slice,
    k: int,
    popular: list[str],
) -> list[list[str]]:
    """Top-``k`` candidates per anchor of one split, in split order, padded with ``popular``."""
    order = np.lexsort((-score, idx))
    ranked: dict[int, list[str]] = {}
    for i in order:
        ranked.setdefault(int(idx[i]), []).append(str(dest[i]))
    out = []
    for a in range(rows.start, rows.stop):
        top = ranked.get(a, [])[:k]
        top += [p for p in popular if p not in top][: k - len(top)]
        out.append(top)
    return out
