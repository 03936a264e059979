"""No leakage: rows later than the anchor time change no sampled id and no cell.

Property: for anchors with ``anchor_time <= T``, deleting, editing (values, foreign keys, times
moved to other times after T) and inserting rows whose time is after T leaves the subgraph and
its cells unchanged. Checked in process with hypothesis, and through the SQL macros once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbt_rfm.sampling import cells, graph_dict, sample
from dbt_rfm.sampling.keys import key_text
from dbt_rfm.sampling.render import CellsCall, SubgraphCall, render
from dbt_rfm.sampling.synthetic import EPOCH, SyntheticGraph, synthetic_graph
from dbt_rfm.spec import GraphSpec

ORDER = [
    ("entity_id", "ascending"),
    ("anchor_time", "ascending"),
    ("hop", "ascending"),
    ("table_name", "ascending"),
    ("row_key", "ascending"),
]


def _rows(t: pa.Table) -> list[tuple]:
    cols = [
        [("NaN" if isinstance(v, float) and v != v else v) for v in t[c].to_pylist()]
        for c in t.column_names
    ]
    return list(zip(*cols, strict=True))


def _anchors(
    g: SyntheticGraph, entity: str, cut: dt.datetime, n: int, rng: np.random.Generator
) -> pa.Table:
    ids = key_text(g.tables[entity], g.spec.table(entity).primary_key)
    pick = rng.choice(len(ids), min(n, len(ids)), replace=False)
    back = rng.integers(0, 40 * 24, len(pick))
    return pa.table(
        {
            "entity_id": ids.take(pa.array(pick)),
            "anchor_time": pa.array(
                [cut - dt.timedelta(hours=int(h)) for h in back], pa.timestamp("us")
            ),
        }
    )


def _future_edit(
    g: SyntheticGraph,
    cut: dt.datetime,
    protect: dict[str, set[str]],
    rng: np.random.Generator,
    delete: float,
    edit: float,
    insert: int,
) -> dict[str, pa.Table]:
    """Delete, edit and insert rows of time-stamped tables whose time is after ``cut``."""
    spec: GraphSpec = g.spec
    keys_of = {t.name: key_text(g.tables[t.name], t.primary_key).to_pylist() for t in spec.tables}
    fk_cols = {c: lk for lk in spec.links for c in lk.child_columns}
    out = dict(g.tables)
    for t in spec.tables:
        if t.time_column is None:
            continue
        data = g.tables[t.name]
        recs = data.to_pylist()
        keys = keys_of[t.name]
        is_date = pa.types.is_date(data.schema.field(t.time_column).type)

        def later(is_date: bool = is_date) -> object:
            when = cut + dt.timedelta(hours=int(rng.integers(1, 24 * 30)))
            return (when + dt.timedelta(days=1)).date() if is_date else when

        def after(v: object) -> bool:
            if v is None:
                return False
            v = v if isinstance(v, dt.datetime) else dt.datetime.combine(v, dt.time())
            return v > cut

        kept = []
        for rec, key in zip(recs, keys, strict=True):
            if not after(rec[t.time_column]) or key in protect.get(t.name, set()):
                kept.append(rec)
                continue
            if rng.random() < delete:
                continue
            if rng.random() < edit:
                rec = dict(rec)
                for c in t.columns:
                    if c.name in t.primary_key:
                        continue
                    if c.name == t.time_column:
                        rec[c.name] = later()
                    elif c.name in fk_cols and len(fk_cols[c.name].child_columns) == 1:
                        parent = keys_of[fk_cols[c.name].parent]
                        rec[c.name] = _pick(rng, parent, data.schema.field(c.name).type)
                    elif c.stype == "numerical":
                        rec[c.name] = (
                            float(rng.normal())
                            if isinstance(rec[c.name], float)
                            else int(rng.integers(0, 99))
                        )
                    elif c.stype == "boolean":
                        rec[c.name] = bool(rng.random() < 0.5)
                    elif c.stype in ("categorical", "text"):
                        rec[c.name] = "edited"
                    elif c.stype == "timestamp":
                        rec[c.name] = later()
            kept.append(rec)
        for i in range(insert):  # new future rows, pointing at anything (anchors included)
            rec = dict(recs[int(rng.integers(0, len(recs)))])
            for k in t.primary_key:
                rec[k] = f"new{i}" if isinstance(rec[k], str) else 10_000 + i
            for c, lk in fk_cols.items():
                if lk.child == t.name and len(lk.child_columns) == 1:
                    rec[c] = _pick(rng, keys_of[lk.parent], data.schema.field(c).type)
            rec[t.time_column] = later()
            kept.append(rec)
        out[t.name] = pa.Table.from_pylist(kept, schema=data.schema)
    return out


def _pick(rng: np.random.Generator, keys: list[str], typ: pa.DataType) -> object:
    k = keys[int(rng.integers(0, len(keys)))]
    return int(k) if pa.types.is_integer(typ) else k


def _case(seed: int, entity: str, cut_day: int, delete: float, edit: float, insert: int):  # noqa: ANN202
    g = synthetic_graph(seed)
    rng = np.random.default_rng(seed + 7)
    cut = EPOCH + dt.timedelta(days=cut_day, hours=int(rng.integers(0, 24)))
    anchors = _anchors(g, entity, cut, 12, rng)
    protect = {entity: set(anchors["entity_id"].to_pylist())}  # hop 0 is always the entity row
    edited = _future_edit(g, cut, protect, rng, delete, edit, insert)
    return g, anchors, edited


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    entity=st.sampled_from(["staff", "tasks", "projects", "depts"]),
    cut_day=st.integers(5, 55),
    delete=st.floats(0, 1),
    edit=st.floats(0, 1),
    insert=st.integers(0, 20),
    hops=st.sampled_from([(1, (4,)), (2, (16, 4)), (3, (2, 2, 2))]),
)
def test_future_rows_change_nothing_in_process(
    seed,
    entity,
    cut_day,
    delete,
    edit,
    insert,  # noqa: ANN001
    hops,
) -> None:
    g, anchors, edited = _case(seed, entity, cut_day, delete, edit, insert)
    k, caps = hops
    before = sample(g.spec, g.tables, anchors, k, caps, entity=entity)
    after = sample(g.spec, edited, anchors, k, caps, entity=entity)
    assert _rows(before) == _rows(after)
    assert _rows(cells(g.spec, g.tables, before)) == _rows(cells(g.spec, edited, after))


def test_the_edit_does_touch_sampled_tables() -> None:
    """Guard for the property above: the edits change data a sampler would see without the cut."""
    g, anchors, edited = _case(1, "staff", 30, 0.3, 0.5, 10)
    late = pa.table(
        {
            "entity_id": anchors["entity_id"],
            "anchor_time": pa.array(
                [dt.datetime(2030, 1, 1)] * anchors.num_rows, pa.timestamp("us")
            ),
        }
    )
    assert _rows(sample(g.spec, g.tables, late, entity="staff")) != _rows(
        sample(g.spec, edited, late, entity="staff")
    )


def test_future_rows_change_nothing_in_sql() -> None:
    g, anchors, edited = _case(3, "staff", 30, 0.3, 0.5, 10)
    gd = graph_dict(g.spec)
    sub_sql, cells_sql = render(
        [SubgraphCall(gd, "staff", "main.anchors"), CellsCall(gd, "main.subgraph")]
    )
    results = []
    for tables in (g.tables, edited):
        con = duckdb.connect()
        for name, t in {**tables, "anchors": anchors}.items():
            con.register("tmp", t)
            con.execute(f"create table main.{name} as select * from tmp")
            con.unregister("tmp")
        sub = con.sql(sub_sql).to_arrow_table().sort_by(ORDER)
        con.execute("create table main.subgraph as select * from sub")
        results.append((_rows(sub), _rows(con.sql(cells_sql).to_arrow_table())))
    assert results[0][0] == results[1][0] and len(results[0][0]) > 3 * anchors.num_rows
    assert results[0][1] == results[1][1]


def _edit_unknown_hours(g: SyntheticGraph, cut: dt.datetime) -> tuple[pa.Table, int]:
    """Tasks done by ``cut`` but reviewed after it: new ``hours`` and new (later) review times."""
    tasks = g.tables["tasks"]
    recs = tasks.to_pylist()
    n = 0
    for i, rec in enumerate(recs):
        done, reviewed = rec["done_at"], rec["reviewed_at"]
        if done is not None and done <= cut and (reviewed is None or reviewed > cut):
            recs[i] = rec | {"hours": 1000.0 + i, "reviewed_at": cut + dt.timedelta(days=3)}
            n += 1
    return pa.Table.from_pylist(recs, schema=tasks.schema), n


def test_values_known_after_the_anchor_time_are_not_cells() -> None:
    """``hours`` is available at ``reviewed_at``: for a task done before the anchor time but
    reviewed after it, neither value is a cell, so editing them changes no cell; without the
    declared availability the same edit does (the guard that this test can fail)."""
    g = synthetic_graph(5)
    cut = EPOCH + dt.timedelta(days=30)
    anchors = _anchors(g, "staff", cut, 30, np.random.default_rng(5))
    tasks, n = _edit_unknown_hours(g, cut)
    edited = g.tables | {"tasks": tasks}
    sub = sample(g.spec, g.tables, anchors, entity="staff")
    assert n > 0 and sub.filter(pc.equal(sub["table_name"], "tasks")).num_rows > 0
    assert _rows(cells(g.spec, g.tables, sub)) == _rows(cells(g.spec, edited, sub))
    ungated = GraphSpec(
        tables=tuple(
            t
            if t.name != "tasks"
            else replace(t, columns=tuple(replace(c, available_at=None) for c in t.columns))
            for t in g.spec.tables
        ),
        links=g.spec.links,
    )
    assert _rows(cells(ungated, g.tables, sub)) != _rows(cells(ungated, edited, sub))
