"""The SQL macros return row for row what the in-process sampler returns (subgraph and cells)."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from dbt_rfm.errors import RfmError
from dbt_rfm.sampling import GraphIndex, cells, graph_dict, sample
from dbt_rfm.sampling.demo import demo_graph, demo_tables, load_demo
from dbt_rfm.sampling.keys import key_text
from dbt_rfm.sampling.render import CellsCall, SubgraphCall, render
from dbt_rfm.sampling.synthetic import synthetic_graph, synthetic_spec

ORDER = [
    ("entity_id", "ascending"),
    ("anchor_time", "ascending"),
    ("hop", "ascending"),
    ("table_name", "ascending"),
    ("row_key", "ascending"),
]

SYNTHETIC_CASES = [
    ("staff", 2, (16, 4)),
    ("staff", 3, (2, 1, 1)),
    ("tasks", 3, (2, 2, 1)),
    ("projects", 2, (0, 3)),
    ("depts", 3, (3, 1, 2)),
]


@pytest.fixture(scope="module")
def sql() -> dict[str, str]:
    """Every statement these tests run, rendered by dbt in one invocation."""
    syn, demo = graph_dict(synthetic_spec()), graph_dict(_demo_spec())
    calls: dict[str, SubgraphCall | CellsCall] = {
        f"{e}/{h}/{f}": SubgraphCall(syn, e, "main.anchors", h, list(f))
        for e, h, f in SYNTHETIC_CASES
    }
    calls["synthetic_cells"] = CellsCall(syn, "main.subgraph")
    calls["demo_planes"] = SubgraphCall(demo, "planes", "main.anchors")  # default caps
    calls["demo_flights"] = SubgraphCall(demo, "flights", "main.anchors")
    calls["demo_cells"] = CellsCall(demo, "main.subgraph")
    return dict(zip(calls, render(list(calls.values())), strict=True))


_DEMO: dict[str, object] = {}


def _demo_con() -> duckdb.DuckDBPyConnection:
    if "con" not in _DEMO:
        con = duckdb.connect()
        load_demo(con)
        _DEMO["con"] = con
    return _DEMO["con"]  # type: ignore[return-value]


def _demo_spec():  # noqa: ANN202
    return demo_graph(_demo_con())


def _put(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    con.register("rfm_tmp", table)
    con.execute(f"create or replace table main.{name} as select * from rfm_tmp")
    con.unregister("rfm_tmp")


def _rows(t: pa.Table) -> list[tuple]:
    """Rows as tuples, NaN made comparable."""
    cols = [
        [("NaN" if isinstance(v, float) and v != v else v) for v in t[c].to_pylist()]
        for c in t.column_names
    ]
    return list(zip(*cols, strict=True))


def _check_same(
    con,
    sql_sub: str,
    sql_cells: str,
    index: GraphIndex,
    anchors: pa.Table,
    entity: str,
    hops: int | None = None,
    fanouts=None,
) -> int:  # noqa: ANN001
    _put(con, "anchors", anchors)
    from_sql = con.sql(sql_sub).to_arrow_table().sort_by(ORDER)
    kwargs = {} if hops is None else {"hops": hops, "fanouts": fanouts}
    in_proc = sample(index, None, anchors, entity=entity, **kwargs)
    assert from_sql.column_names == in_proc.column_names
    assert _rows(from_sql) == _rows(in_proc)
    _put(con, "subgraph", in_proc)
    cells_sql = con.sql(sql_cells).to_arrow_table()  # ordered by the macro itself
    cells_py = cells(index, None, in_proc)
    assert cells_sql.schema.names == cells_py.schema.names
    assert [f.type for f in cells_sql.schema] == [f.type for f in cells_py.schema]
    assert _rows(cells_sql) == _rows(cells_py)
    return in_proc.num_rows


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_synthetic_graphs_match(sql: dict[str, str], seed: int) -> None:
    g = synthetic_graph(seed)
    con = duckdb.connect()
    for name, table in g.tables.items():
        _put(con, name, table)
    index = GraphIndex.build(g.spec, g.tables)
    rng = np.random.default_rng(seed)
    for entity, hops, fanouts in SYNTHETIC_CASES:
        ids = key_text(g.tables[entity], g.spec.table(entity).primary_key)
        pick = rng.choice(len(ids), min(20, len(ids)), replace=False)
        times = (1_704_067_200 + rng.integers(-5 * 86400, 65 * 86400, len(pick))) * 1_000_000
        anchors = pa.table(
            {
                "entity_id": ids.take(pa.array(pick)),
                "anchor_time": pa.array(times).cast(pa.timestamp("us")),
            }
        )
        anchors = pa.concat_tables([anchors, anchors.slice(0, 3)])  # duplicates collapse
        n = _check_same(
            con,
            sql[f"{entity}/{hops}/{fanouts}"],
            sql["synthetic_cells"],
            index,
            anchors,
            entity,
            hops,
            fanouts,
        )
        assert n > len(pick)  # something beyond hop 0 was sampled


def test_demo_plane_and_flight_anchors_match(sql: dict[str, str]) -> None:
    con = _demo_con()
    spec = _demo_spec()
    index = GraphIndex.build(spec, demo_tables(con, spec))
    planes = con.sql(
        "select tailnum as entity_id, timestamp '2013-03-01' "
        "+ to_hours(cast(hash(tailnum) % 5000 as integer)) as anchor_time "
        "from planes order by hash(tailnum) limit 300"
    ).to_arrow_table()
    n = _check_same(con, sql["demo_planes"], sql["demo_cells"], index, planes, "planes")
    assert n > 10 * planes.num_rows
    flights = con.sql(
        "select cast(flight_id as varchar) as entity_id, "
        "scheduled_departure + to_minutes(cast(hash(flight_id) % 240 as integer) - 60) "
        "as anchor_time from flights order by hash(flight_id) limit 300"
    ).to_arrow_table()
    n = _check_same(con, sql["demo_flights"], sql["demo_cells"], index, flights, "flights")
    assert n > 10 * flights.num_rows


def test_demo_plane_statement_shape(sql: dict[str, str]) -> None:
    """Compile-time plan of the plane statement: the flights of hop 1 came down the tailnum link
    only, so hop 2 does not go back up it (to their plane, the anchor itself); each table of a
    hop is deduplicated by its own GROUP BY, with no window over all candidates of a hop."""
    text = sql["demo_planes"]
    assert "h1_flights as" in text and "h2_weather_up as" in text
    assert "h2_planes" not in text  # the walk back to the anchor's own plane is not expanded
    assert "h2_flights_fks as" in text and "inner join main.flights as r" in text
    assert "partition by n.entity_id" not in text and "min(parent_key)" in text


def test_vars_caps_and_portable_sql() -> None:
    """Caps from vars dbt_rfm:hops / dbt_rfm:fanouts; `default__` SQL (no DuckDB ASOF join)
    rendered on DuckDB through var dbt_rfm:portable_sql matches the in-process sampler too."""
    syn = graph_dict(synthetic_spec())
    cases = [("staff", 2, (16, 4)), ("tasks", 3, (2, 2, 1))]
    v = {"dbt_rfm:portable_sql": True, "dbt_rfm:hops": 1, "dbt_rfm:fanouts": [3]}
    texts = render(
        [SubgraphCall(syn, "staff", "main.anchors", vars=v)]
        + [SubgraphCall(syn, e, "main.anchors", h, list(f), vars=v) for e, h, f in cases]
        + [CellsCall(syn, "main.subgraph", vars=v)]
    )
    from_vars, texts = texts[0], texts[1:]
    assert "hop_1 as" in from_vars and "hop_2" not in from_vars
    assert "select 2 as j" in from_vars and "select 3 as j" not in from_vars  # ranks n..n-2
    assert all("asof" not in t for t in texts) and "max(asc_rank) over" in texts[0]
    g = synthetic_graph(5)
    con = duckdb.connect()
    for name, table in g.tables.items():
        _put(con, name, table)
    index = GraphIndex.build(g.spec, g.tables)
    ids = key_text(g.tables["staff"], ("staff_id",))
    anchors = pa.table(
        {
            "entity_id": ids.slice(0, 15),
            "anchor_time": pa.array([1_709_000_000_000_000] * 15, pa.timestamp("us")),
        }
    )
    assert _check_same(con, from_vars, texts[-1], index, anchors, "staff", 1, (3,)) > 15
    for (entity, hops, fanouts), text in zip(cases, texts, strict=False):
        ids = key_text(g.tables[entity], g.spec.table(entity).primary_key)
        anchors = pa.table(
            {
                "entity_id": ids.slice(0, 15),
                "anchor_time": pa.array([1_709_000_000_000_000] * 15, pa.timestamp("us")),
            }
        )
        assert _check_same(con, text, texts[-1], index, anchors, entity, hops, fanouts) > 15


def test_bad_caps_are_compiler_errors() -> None:
    syn = graph_dict(synthetic_spec())
    with pytest.raises(RfmError, match=r"one cap per hop \(3 hops\), found \[16, 4\]"):
        render([SubgraphCall(syn, "staff", "main.anchors", vars={"dbt_rfm:hops": 3})])
