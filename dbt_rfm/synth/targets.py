"""Random predictive queries over a database, in the YAML target form of :mod:`dbt_rfm.pql`.

Each aggregate target picks an entity table and a child table with a time column, a window of
7 to 90 days, a task (binary, regression, multiclass, ranking) and an aggregate; casts sit at
random quantiles of the labels on the target's own anchor spine, and a target is kept only
when its labels are not degenerate (binary: 5% to 95% positives). A share
(:data:`STATIC_SHARE`) are static targets instead: a value column of a table with a time
column, predicted for each row at the row's own time (like "is this flight delayed"), with a
time split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rfm_runtime.schema import ANCHORS

from dbt_rfm.errors import RfmError
from dbt_rfm.spec import LinkSpec
from dbt_rfm.synth.db import SynthDB, row_keys
from dbt_rfm.synth.sql_labels import LabelDB

WINDOWS = (7, 14, 30, 60, 90)
STATIC_SHARE = 0.25
STATIC_STYPES = ("numerical", "boolean", "categorical")
TASK_WEIGHTS = {"binary": 0.4, "regression": 0.3, "multiclass": 0.15, "ranking": 0.15}
DAY = 86_400 * 10**6  # microseconds


def anchor_spine(
    db: SynthDB,
    entity: str,
    table: str,
    window_days: int,
    rng: np.random.Generator,
    max_times: int = 8,
    max_entities: int | None = 2000,
) -> tuple[pa.Table, dict[str, Any]]:
    """A spine of anchors for ``entity``, with label windows inside ``table``'s time range.

    Anchor times are midnights stepping back by a random step (half to one window) from the
    last time whose window of ``window_days`` ends by ``table``'s last row, keeping at least
    one window of history. At each time, the entities that exist (created by then) are
    anchors, subsampled to ``max_entities``.

    Returns:
        ``(anchors, spine)``: an ANCHORS table sorted by time then entity, and the YAML spine
        ``{start, end, step, unit}`` that reproduces its times.
    """
    t_spec = db.spec.table(table)
    if t_spec.time_column is None:
        raise RfmError(f"model '{table}' has no time column to place anchors in")
    t = pc.cast(db.tables[table][t_spec.time_column], pa.int64()).to_numpy()
    if t.size == 0:
        raise RfmError(f"model '{table}' has no rows to place anchors in")
    step = int(rng.integers(max(1, window_days // 2), window_days + 1))
    end = (int(t.max()) // DAY - window_days) * DAY
    start_min = (int(t.min()) // DAY + window_days) * DAY
    times = [end - k * step * DAY for k in range(max_times) if end - k * step * DAY >= start_min]
    if not times:
        raise RfmError(f"model '{table}' spans too little time for {window_days}-day windows")
    anchors = entities_at(db, entity, times, rng, max_entities)
    iso = [
        str(np.datetime64(min(times), "us").astype("datetime64[D]")),
        str(np.datetime64(max(times), "us").astype("datetime64[D]")),
    ]
    return anchors, {"start": iso[0], "end": iso[1], "step": step, "unit": "days"}


def entities_at(
    db: SynthDB,
    entity: str,
    times_us: list[int],
    rng: np.random.Generator,
    max_entities: int | None = 2000,
) -> pa.Table:
    """Anchors at the given times: the entities that exist then, subsampled to ``max_entities``.

    Args:
        times_us: anchor times, microseconds since the epoch.

    Returns:
        An ANCHORS table sorted by time then entity row order.
    """
    ent = db.spec.table(entity)
    keys = row_keys(db.tables[entity], ent.primary_key)
    born = (
        None
        if ent.time_column is None
        else pc.cast(db.tables[entity][ent.time_column], pa.int64()).to_numpy()
    )
    ids, at = [pa.array([], pa.string())], [np.zeros(0, dtype=np.int64)]
    for time in sorted(times_us):
        idx = np.arange(len(keys)) if born is None else np.flatnonzero(born <= time)
        if max_entities is not None and idx.size > max_entities:
            idx = np.sort(rng.choice(idx, size=max_entities, replace=False))
        ids.append(keys.take(pa.array(idx, pa.int64())))
        at.append(np.full(idx.size, time, dtype=np.int64))
    return pa.table(
        [pa.concat_arrays(ids), pa.array(np.concatenate(at)).cast(pa.timestamp("us"))],
        schema=ANCHORS,
    )


def target_anchors(
    db: SynthDB,
    target: dict[str, Any],
    rng: np.random.Generator,
    max_entities: int | None = 2000,
) -> pa.Table:
    """Anchors of a target from its YAML spine ``{start, end, step, unit: days}``.

    Times run from ``start`` by ``step`` days up to ``end`` (inclusive), as in the IR. A
    static target's anchors are its entity's rows at their own time (:func:`static_anchors`).
    """
    if "static" in target:
        return static_anchors(db, str(target["entity"]), rng, max_entities)
    spine = target["anchors"]["spine"]
    if spine.get("unit", "days") != "days" or not spine.get("step"):
        raise RfmError(f"target '{target.get('name')}': in-process spines need a step in days")
    start = int(np.datetime64(spine["start"], "us").astype(np.int64))
    end = int(np.datetime64(spine["end"], "us").astype(np.int64))
    times = list(range(start, end + 1, int(spine["step"]) * DAY))
    return entities_at(db, str(target["entity"]), times, rng, max_entities)


def random_targets(db: SynthDB, rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """Draw ``n`` random, non-degenerate targets (fewer if the database offers too few).

    Returns:
        YAML target dicts (``name, entity, task, aggregate, cast?, entity_filter?, top_k?,
        anchors``) that :meth:`dbt_rfm.pql.Target.from_dict` accepts.
    """
    cands = [
        lk
        for lk in db.spec.links
        if lk.child != lk.parent
        and db.spec.table(lk.child).time_column is not None
        and db.tables[lk.child].num_rows > 0
    ]
    if not cands:
        return []
    statics = [
        (t.name, c.name, c.stype)
        for t in db.spec.tables
        if t.time_column is not None and db.tables[t.name].num_rows >= 100
        for c in t.value_columns
        if c.stype in STATIC_STYPES
    ]
    out: list[dict[str, Any]] = []
    with LabelDB(db) as ldb:
        for _ in range(n * 15):
            if len(out) == n:
                break
            name = f"t{len(out)}"
            if statics and rng.random() < STATIC_SHARE:
                target = _draw_static(ldb, rng, statics[int(rng.integers(len(statics)))], name)
            else:
                link = cands[int(rng.integers(len(cands)))]
                target = _draw(ldb, rng, link, name=name)
            if target is not None:
                out.append(target)
    return out


def static_anchors(
    db: SynthDB, entity: str, rng: np.random.Generator, max_rows: int | None = 2000
) -> pa.Table:
    """Anchors of a static target: rows of ``entity`` at their own time (a random subsample
    of at most ``max_rows``), sorted by time then row order."""
    spec = db.spec.table(entity)
    if spec.time_column is None:
        raise RfmError(f"static target on '{entity}': the model has no time column")
    table = db.tables[entity]
    times = pc.cast(table[spec.time_column], pa.int64()).to_numpy(zero_copy_only=False)
    idx = np.arange(table.num_rows)
    if max_rows is not None and idx.size > max_rows:
        idx = np.sort(rng.choice(idx, size=max_rows, replace=False))
    idx = idx[np.argsort(times[idx], kind="stable")]
    keys = row_keys(table, spec.primary_key).take(pa.array(idx, pa.int64()))
    at = pa.array(times[idx]).cast(pa.timestamp("us"))
    return pa.table([keys, at], schema=ANCHORS)


def _draw_static(
    ldb: LabelDB, rng: np.random.Generator, pick: tuple[str, str, str], name: str
) -> dict[str, Any] | None:
    """A static target on column ``pick = (table, column, stype)``; split at a random
    late quantile of the rows' times."""
    table, column, stype = pick
    anchors = static_anchors(ldb.db, table, rng)
    times = pc.cast(anchors["anchor_time"], pa.int64()).to_numpy()
    split = int(np.quantile(times, rng.uniform(0.7, 0.85)))
    iso = str(np.datetime64(split, "us"))
    target: dict[str, Any] = {"name": name, "entity": table, "static": column}
    target["anchors"] = {"split": iso}
    if stype == "categorical":
        target["task"] = "multiclass"
    elif stype == "boolean":
        target |= {"task": "binary", "cast": {"op": "=", "value": True}}
    else:
        target["task"] = "binary" if rng.random() < 0.6 else "regression"
    values = _label_values(ldb, target, anchors)
    if len(values) < 30:
        return None
    return _finish(rng, target, values)


def _draw(
    ldb: LabelDB, rng: np.random.Generator, link: LinkSpec, name: str
) -> dict[str, Any] | None:
    db = ldb.db
    child = db.spec.table(link.child)
    tasks = list(TASK_WEIGHTS)
    task = tasks[int(rng.choice(len(tasks), p=np.array(list(TASK_WEIGHTS.values()))))]
    window = int(rng.choice(WINDOWS))
    by_stype: dict[str, list[str]] = {}
    for c in child.value_columns:
        by_stype.setdefault(c.stype, []).append(c.name)
    nums = by_stype.get("numerical", [])
    agg: dict[str, Any] = {
        "table": child.name,
        "column": "*",
        "start": 0,
        "end": window,
        "unit": "days",
    }
    if len([lk for lk in db.spec.links_from(child.name) if lk.parent == link.parent]) > 1:
        agg["link"] = list(link.child_columns)
    if task == "multiclass":
        cats = by_stype.get("categorical", [])
        if not cats:
            return None
        agg |= {"fn": str(rng.choice(["FIRST", "LAST"])), "column": str(rng.choice(cats))}
    elif task == "ranking":
        items = [
            lk
            for lk in db.spec.links_from(child.name)
            if lk.parent not in (link.parent, child.name) and len(lk.child_columns) == 1
        ]
        if not items:
            return None
        agg |= {
            "fn": "LIST_DISTINCT",
            "column": items[int(rng.integers(len(items)))].child_columns[0],
        }
    else:
        fns = ["COUNT", "EXISTS"] if task == "binary" else ["COUNT"]
        fns += ["SUM", "AVG", "MAX", "MIN"] if nums else []
        fn = str(rng.choice(fns))
        agg |= {"fn": fn, "column": "*" if fn in ("COUNT", "EXISTS") else str(rng.choice(nums))}
        if rng.random() < 0.3:
            agg["where"] = _random_where(db, rng, child.name)
    target: dict[str, Any] = {"name": name, "entity": link.parent, "task": task, "aggregate": agg}
    if agg["fn"] in ("COUNT", "SUM", "EXISTS") and rng.random() < 0.5:
        target["entity_filter"] = {
            "aggregate": {
                "fn": "COUNT",
                "table": child.name,
                "column": "*",
                "start": -int(rng.choice([window, 2 * window, 90])),
                "end": 0,
                "unit": "days",
            }
            | ({"link": agg["link"]} if "link" in agg else {}),
            "cast": {"op": ">", "value": 0},
        }
    if task == "ranking":
        target["top_k"] = int(rng.choice([5, 10]))
    try:
        anchors, spine = anchor_spine(db, link.parent, child.name, window, rng, max_times=6)
    except RfmError:
        return None
    target["anchors"] = {"spine": spine}
    values = _label_values(ldb, target, anchors)
    if len(values) < 30:
        return None
    return _finish(rng, target, values)


def _label_values(ldb: LabelDB, target: dict[str, Any], anchors: pa.Table) -> np.ndarray:
    """The uncast aggregate of every labelled anchor (after the entity filter), via the
    project's label SQL: float64 (binary, regression), str (multiclass) or list (ranking)."""
    task = target["task"]
    probe = dict(target)
    fn = target["aggregate"]["fn"] if "aggregate" in target else None
    if task == "binary" and fn != "EXISTS" and "cast" not in target:
        probe["task"] = "regression"  # the raw value; the cast is chosen from it
    labels = ldb.labels(probe, anchors)
    if task == "multiclass":
        return np.asarray(labels["label_class"].to_pylist(), dtype=object)
    if task == "ranking":
        out = np.empty(labels.num_rows, dtype=object)
        out[:] = labels["label_items"].to_pylist()
        return out
    return labels["label"].to_numpy(zero_copy_only=False).astype(np.float64)


def _finish(
    rng: np.random.Generator, target: dict[str, Any], values: np.ndarray
) -> dict[str, Any] | None:
    """Add a cast (binary) and check that the labels vary enough; None when degenerate."""
    task = target["task"]
    fn = target["aggregate"]["fn"] if "aggregate" in target else None
    if task == "multiclass":
        _, counts = np.unique(values.astype(str), return_counts=True)
        return target if counts.size > 1 and counts.max() <= 0.9 * counts.sum() else None
    if task == "ranking":
        return target
    x = values.astype(np.float64)
    if task == "regression":
        _, counts = np.unique(x, return_counts=True)
        return target if counts.size > 1 and counts.max() <= 0.95 * x.size else None
    if fn == "EXISTS" or "cast" in target:  # labels already 0/1
        return target if 0.05 <= x.mean() <= 0.95 else None
    q = float(np.quantile(x, rng.uniform(0.2, 0.8)))
    q = int(q) if float(q).is_integer() else round(q, 4)
    for op in (">", ">="):
        rate = float((x > q).mean() if op == ">" else (x >= q).mean())
        if 0.05 <= rate <= 0.95:
            return target | {"cast": {"op": op, "value": q}}
    return None


def _random_where(db: SynthDB, rng: np.random.Generator, table: str) -> list[dict[str, Any]]:
    """One comparison on a value column of ``table`` that keeps a sizeable share of rows."""
    spec = db.spec.table(table)
    data = db.tables[table]
    cols = [c for c in spec.value_columns if c.stype in ("categorical", "boolean", "numerical")]
    if not cols:
        return [{"column": spec.time_column, "op": "IS NOT NULL"}]
    c = cols[int(rng.integers(len(cols)))]
    col = data[c.name].drop_null()
    if len(col) == 0:
        return [{"column": c.name, "op": "IS NULL"}]
    if c.stype == "numerical":
        median = float(np.median(pc.cast(col, pa.float64()).to_numpy()))
        return [{"column": c.name, "op": str(rng.choice([">", "<="])), "value": round(median, 4)}]
    value = col[int(rng.integers(len(col)))].as_py()  # frequent values are drawn more often
    return [{"column": c.name, "op": str(rng.choice(["=", "!="])), "value": value}]
