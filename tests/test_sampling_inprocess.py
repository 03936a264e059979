"""In-process sampler: vs a literal per-anchor reference of docs/sampling.md, by hand, errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from dbt_rfm.errors import RfmError
from dbt_rfm.sampling import GraphIndex, cells, sample
from dbt_rfm.sampling.keys import key_text
from dbt_rfm.sampling.synthetic import synthetic_graph
from dbt_rfm.spec import ColumnSpec, GraphSpec, LinkSpec, TableSpec

# -- a literal, loop-per-anchor reading of the algorithm (no index, no vectorisation) ------------


def _rows(spec: GraphSpec, tables: dict[str, pa.Table]) -> dict[str, dict[str, dict]]:
    """{table: {row_key: row dict (+ '_fk' per link, '_t' row time or None)}}."""
    out: dict[str, dict[str, dict]] = {}
    for t in spec.tables:
        data = tables[t.name]
        keys = key_text(data, t.primary_key).to_pylist()
        fks = {
            lk.name: key_text(data, lk.child_columns).to_pylist() for lk in spec.links_from(t.name)
        }
        recs = data.to_pylist()
        out[t.name] = {}
        for i, k in enumerate(keys):
            rec = dict(recs[i])
            rec["_fk"] = {name: v[i] for name, v in fks.items()}
            rec["_t"] = rec[t.time_column] if t.time_column else None
            if isinstance(rec["_t"], dt.date) and not isinstance(rec["_t"], dt.datetime):
                rec["_t"] = dt.datetime.combine(rec["_t"], dt.time())
            out[t.name][k] = rec
    return out


def reference_sample(spec, tables, entity, anchors, hops, fanouts) -> set[tuple]:
    rows = _rows(spec, tables)

    def visible(table: str, key: str, at: dt.datetime) -> bool:
        if spec.table(table).time_column is None:
            return True
        t = rows[table][key]["_t"]
        return t is not None and t <= at

    out = set()
    for eid, at in set(anchors):
        out.add((eid, at, entity, eid, 0, None, None))
        seen = {(entity, eid)}
        frontier = [(entity, eid)] if eid in rows[entity] else []
        for h in range(1, hops + 1):
            cand: dict[tuple, tuple] = {}
            for table, key in frontier:
                for lk in spec.links:
                    found = []
                    if lk.child == table:
                        fk = rows[table][key]["_fk"][lk.name]
                        if fk is not None and fk in rows[lk.parent] and visible(lk.parent, fk, at):
                            found.append((lk.parent, fk))
                    if lk.parent == table:
                        kids = [
                            (rows[lk.child][c]["_t"], c)
                            for c, r in rows[lk.child].items()
                            if r["_fk"][lk.name] == key and visible(lk.child, c, at)
                        ]
                        # newest first, ties by row_key ascending
                        kids.sort(key=lambda tc: (tc[1],))
                        kids.sort(key=lambda tc: tc[0] or dt.datetime.min, reverse=True)
                        found += [(lk.child, c) for _, c in kids[: fanouts[h - 1]]]
                    for node in found:
                        if node in seen:
                            continue
                        best = cand.get(node)
                        if best is None or (table, key) < best:
                            cand[node] = (table, key)
            for node, par in cand.items():
                out.add((eid, at, node[0], node[1], h, par[0], par[1]))
            seen |= set(cand)
            frontier = sorted(cand)
    return out


def _as_set(t: pa.Table) -> set[tuple]:
    cols = [
        "entity_id",
        "anchor_time",
        "table_name",
        "row_key",
        "hop",
        "parent_table",
        "parent_key",
    ]
    return set(zip(*(t[c].to_pylist() for c in cols), strict=True))


def _anchors(g, entity: str, n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = key_text(g.tables[entity], g.spec.table(entity).primary_key)
    pick = rng.choice(len(ids), min(n, len(ids)), replace=False)
    times = (1_704_067_200 + rng.integers(-5 * 86400, 65 * 86400, len(pick))) * 1_000_000
    return pa.table(
        {
            "entity_id": ids.take(pa.array(pick)),
            "anchor_time": pa.array(times).cast(pa.timestamp("us")),
        }
    )


CASES = [
    ("staff", 2, (16, 4)),
    ("staff", 3, (2, 1, 1)),
    ("tasks", 3, (2, 2, 1)),
    ("projects", 2, (0, 3)),
    ("depts", 3, (3, 1, 2)),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("entity", "hops", "fanouts"), CASES)
def test_matches_literal_reference(seed: int, entity: str, hops: int, fanouts: tuple) -> None:
    g = synthetic_graph(seed)
    anchors = _anchors(g, entity, 12, seed)
    got = sample(g.spec, g.tables, anchors, hops, fanouts, entity=entity)
    pairs = list(
        zip(anchors["entity_id"].to_pylist(), anchors["anchor_time"].to_pylist(), strict=True)
    )
    want = reference_sample(g.spec, g.tables, entity, pairs, hops, fanouts)
    assert got.num_rows == len(want)  # no duplicate nodes
    assert _as_set(got) == want


# -- a graph small enough to work out by hand -------------------------------------------------


def _hand_graph() -> tuple[GraphSpec, dict[str, pa.Table]]:
    spec = GraphSpec(
        tables=(
            TableSpec(
                "user",
                "main.user",
                ("uid",),
                None,
                (ColumnSpec("uid", "varchar", "key"), ColumnSpec("vip", "boolean", "boolean")),
            ),
            TableSpec(
                "order",
                "main.order",
                ("oid",),
                "ts",
                (
                    ColumnSpec("oid", "bigint", "key"),
                    ColumnSpec("uid", "varchar", "key"),
                    ColumnSpec("ts", "timestamp", "timestamp"),
                    ColumnSpec("total", "double", "numerical"),
                ),
            ),
        ),
        links=(LinkSpec("order", ("uid",), "user", ("uid",)),),
    )
    day = [dt.datetime(2024, 1, d) for d in range(1, 6)]
    tables = {
        "user": pa.table({"uid": ["a", "b"], "vip": [True, False]}),
        "order": pa.table(
            {
                "oid": [1, 2, 3, 4, 5, 6],
                "uid": ["a", "a", "a", "a", "b", None],
                "ts": [day[0], day[2], day[2], day[4], day[1], day[0]],
                "total": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
            }
        ),
    }
    return spec, tables


def test_hand_worked_example() -> None:
    spec, tables = _hand_graph()
    anchors = pa.table({"entity_id": ["a"], "anchor_time": [dt.datetime(2024, 1, 3, 12)]})
    got = sample(spec, tables, anchors, hops=2, fanouts=(2, 5), entity="user")
    rows = sorted(
        zip(
            got["hop"].to_pylist(),
            got["table_name"].to_pylist(),
            got["row_key"].to_pylist(),
            got["parent_key"].to_pylist(),
            strict=True,
        )
    )
    # orders of 'a' visible at Jan 3 12:00: 1 (Jan 1), 2 and 3 (Jan 3, a tie); 4 is in the
    # future. Newest two, tie broken by key: 2, 3. Hop 2 reaches back only to user 'a' (seen).
    assert rows == [(0, "user", "a", None), (1, "order", "2", "a"), (1, "order", "3", "a")]
    c = cells(spec, tables, got)
    assert c["column_name"].to_pylist() == ["vip", "ts", "total", "ts", "total"]
    assert c["num_value"].to_pylist() == [1.0, -0.5, 20.0, -0.5, 30.0]
    assert c["rel_days"].to_pylist() == [None, -0.5, -0.5, -0.5, -0.5]


def test_static_child_table_ranks_by_key_and_caps() -> None:
    spec, tables = _hand_graph()
    order = spec.table("order")
    static = GraphSpec(
        tables=(
            spec.table("user"),
            TableSpec("order", order.relation, order.primary_key, None, order.columns),
        ),
        links=spec.links,
    )
    anchors = pa.table({"entity_id": ["a"], "anchor_time": [dt.datetime(2000, 1, 1)]})
    got = sample(static, tables, anchors, hops=1, fanouts=(3,), entity="user")
    # static: every order is visible; order by row_key ascending as text
    assert got.filter(pa.compute.equal(got["hop"], 1))["row_key"].to_pylist() == ["1", "2", "3"]


def test_index_is_reusable_and_anchor_duplicates_collapse() -> None:
    g = synthetic_graph(3)
    index = GraphIndex.build(g.spec, g.tables)
    anchors = _anchors(g, "staff", 10, 3)
    twice = pa.concat_tables([anchors, anchors])
    a = sample(index, None, twice, entity="staff")
    b = sample(g.spec, g.tables, anchors, entity="staff")
    assert a.equals(b)
    ca, cb = cells(index, None, a), cells(g.spec, g.tables, b)
    # NaN hours are in the data: compare NaN-aware
    assert ca.num_rows > 0 and ca.num_rows == cb.num_rows
    for col in ca.column_names:
        assert [_nan_safe(v) for v in ca[col].to_pylist()] == [
            _nan_safe(v) for v in cb[col].to_pylist()
        ]


def _nan_safe(v: object) -> object:
    return "NaN" if isinstance(v, float) and v != v else v


def test_missing_entity_row_is_hop_zero_only() -> None:
    spec, tables = _hand_graph()
    anchors = pa.table({"entity_id": ["zz"], "anchor_time": [dt.datetime(2024, 2, 1)]})
    got = sample(spec, tables, anchors, entity="user")
    assert got.num_rows == 1 and got["hop"].to_pylist() == [0]
    assert cells(spec, tables, got).num_rows == 0


def test_errors_name_what_is_wrong() -> None:
    spec, tables = _hand_graph()
    anchors = pa.table({"entity_id": ["a"], "anchor_time": [dt.datetime(2024, 2, 1)]})
    with pytest.raises(RfmError, match="one cap per hop"):
        sample(spec, tables, anchors, hops=2, fanouts=(3,), entity="user")
    with pytest.raises(RfmError, match="did you mean 'user'"):
        sample(spec, tables, anchors, entity="users")
    with pytest.raises(RfmError, match="entity_table"):
        sample(spec, tables, anchors)
    dup = tables | {"user": pa.table({"uid": ["a", "a"], "vip": [True, False]})}
    with pytest.raises(RfmError, match="model 'user': primary key"):
        GraphIndex.build(spec, dup)
    with pytest.raises(RfmError, match="no Arrow table for model 'order'"):
        GraphIndex.build(spec, {"user": tables["user"]})
    bad = GraphSpec(
        tables=(
            TableSpec(
                "user",
                "u",
                ("uid",),
                None,
                (ColumnSpec("uid", "varchar", "key"), ColumnSpec("vip", "boolean", "vector")),
            ),
        )
    )
    with pytest.raises(RfmError, match="column 'vip': stype 'vector'"):
        cells(
            bad,
            {"user": tables["user"]},
            sample(bad, {"user": tables["user"]}, anchors, entity="user"),
        )
