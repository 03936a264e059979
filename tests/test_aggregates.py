"""The accuracy benchmark's aggregate feature builder: exact values and time-awareness."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from bench.accuracy.graph import flights_graph
from dbt_rfm.aggregates import (
    PREFIX,
    FeatureTable,
    Graph,
    LinkPath,
    Step,
    aggregate_windows,
    build_features,
    enumerate_paths,
    graph_from_spec,
    target_aggregates,
    target_windows,
)
from dbt_rfm.errors import RfmError
from dbt_rfm.spec import ColumnSpec, GraphSpec, LinkSpec, TableSpec

# users <- orders -> shops (shops have a time column: a row opens at `opened`).
# An order's amount is known `delay` hours after it is placed at `ts`.
ORDERS = [
    # order_id, user_id, shop_id, ts, delay_h, amount
    (1, "u1", "s1", "2024-01-01 10:00", 0, 10.0),
    (2, "u1", "s1", "2024-01-08 10:00", 0, 30.0),
    (3, "u1", "s2", "2024-01-09 23:00", 0, 20.0),
    (4, "u1", "s2", "2024-01-09 23:30", 2, 99.0),  # placed before, known after the anchor
    (5, "u2", "s2", "2024-01-09 12:00", 0, 5.0),
    (6, "u1", "s1", "2024-01-11 10:00", 0, 1000.0),  # future
]
ANCHOR = datetime(2024, 1, 10)

LINK_USER = LinkSpec("orders", ("user_id",), "users", ("user_id",))
LINK_SHOP = LinkSpec("orders", ("shop_id",), "shops", ("shop_id",))


def _graph() -> Graph:
    tables = [
        FeatureTable("users", ("user_id",), None),
        FeatureTable(
            "orders",
            ("order_id",),
            "({t}.ts + to_hours({t}.delay_h))",
            {"amount": "{t}.amount"},
        ),
        FeatureTable("shops", ("shop_id",), "{t}.opened", {"size": "{t}.size"}),
    ]
    return Graph({t.name: t for t in tables}, (LINK_USER, LINK_SHOP))


def _con(orders: list[tuple]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create table users as select * from (values ('u1'), ('u2'), ('u3')) v(user_id)")
    con.execute(
        "create table shops as select * from (values "
        "('s1', timestamp '2023-01-01', 3.0), ('s2', timestamp '2024-02-01', 7.0)"
        ") v(shop_id, opened, size)"
    )
    con.execute(
        "create table orders (order_id int, user_id varchar, shop_id varchar, ts timestamp, "
        "delay_h int, amount double)"
    )
    con.executemany("insert into orders values (?, ?, ?, ?::timestamp, ?, ?)", orders)
    return con


def _anchors(*rows: tuple[str, datetime]) -> pa.Table:
    return pa.table(
        {
            "entity_id": pa.array([r[0] for r in rows], pa.string()),
            "anchor_time": pa.array([r[1] for r in rows], pa.timestamp("us")),
        }
    )


WINDOWS = (timedelta(days=7), None)
USER_ORDERS = LinkPath("users", (Step(LINK_USER, False),))


def _features(orders: list[tuple], anchors: pa.Table, path: LinkPath) -> dict[str, np.ndarray]:
    fm = build_features(_con(orders), _graph(), anchors, path.entity, [path], WINDOWS)
    return {n.split(":", 1)[1]: fm.values[:, j] for j, n in enumerate(fm.names)}


def test_backward_aggregates_hand_computed() -> None:
    f = _features(ORDERS, _anchors(("u1", ANCHOR), ("u3", ANCHOR)), USER_ORDERS)
    # u1 at 2024-01-10: known orders 1 (10), 2 (30), 3 (20); order 4 known at 01:30 next day.
    # 7-day window [01-03, 01-10]: orders 2 and 3.
    assert f["count_7d"][0] == 2
    assert f["amount_sum_7d"][0] == 50
    assert f["amount_mean_7d"][0] == 25
    assert (f["amount_min_7d"][0], f["amount_max_7d"][0]) == (20, 30)
    assert f["count_all"][0] == 3
    assert f["amount_sum_all"][0] == 60
    assert f["amount_min_all"][0] == 10
    assert f["amount_last"][0] == 20  # order 3, the latest known
    # u3 has no orders: counts 0, the rest unknown.
    assert f["count_all"][1] == 0
    assert np.isnan(f["amount_mean_all"][1])


def test_rows_after_the_anchor_never_change_features() -> None:
    anchors = _anchors(("u1", ANCHOR), ("u2", ANCHOR))
    before = _features(ORDERS, anchors, USER_ORDERS)
    changed = [(o[0], o[1], o[2], o[3], o[4], -o[5]) if o[0] in (4, 6) else o for o in ORDERS] + [
        (7, "u2", "s1", "2024-01-10 00:00:01", 0, 1e6)
    ]
    after = _features(changed, anchors, USER_ORDERS)
    for name, col in before.items():
        np.testing.assert_array_equal(col, after[name], err_msg=name)
    # ... while a change to a row known at the anchor does move them (the check can fail).
    past = [(o[0], o[1], o[2], o[3], o[4], o[5] + 1) if o[0] == 3 else o for o in ORDERS]
    assert _features(past, anchors, USER_ORDERS)["amount_sum_all"][0] == 61


def test_hour_windows() -> None:
    # u1 at 2024-01-10 00:00, 3-hour window: order 3 (23:00, known then); order 4 (23:30) is
    # known only at 01:30 the next day.
    fm = build_features(
        _con(ORDERS), _graph(), _anchors(("u1", ANCHOR)), "users", [USER_ORDERS],
        (timedelta(hours=3), timedelta(hours=40)),
    )  # fmt: skip
    f = {n.split(":", 1)[1]: fm.values[0, j] for j, n in enumerate(fm.names)}
    assert (f["count_3h"], f["amount_sum_3h"]) == (1, 20)
    assert (f["count_40h"], f["amount_sum_40h"]) == (2, 50)  # from 01-08 08:00: orders 2, 3


def test_row_known_exactly_at_the_anchor_is_visible() -> None:
    f = _features(ORDERS, _anchors(("u1", datetime(2024, 1, 10, 1, 30))), USER_ORDERS)
    assert f["count_all"][0] == 4
    assert f["amount_last"][0] == 99


def test_sibling_path_excludes_the_anchor_row_itself() -> None:
    # Entity = orders, anchor at its own placement time; siblings share the shop.
    path = LinkPath("orders", (Step(LINK_SHOP, True), Step(LINK_SHOP, False)))
    anchors = _anchors(("3", datetime(2024, 1, 9, 23, 0)), ("4", datetime(2024, 1, 9, 23, 30)))
    f = _features(ORDERS, anchors, path)
    # At 23:00 shop s2 has order 5 (5.0) and order 3 itself is known at 23:00: included
    # because known_at <= anchor; the entity row is not special-cased, only time decides.
    assert f["count_all"][0] == 2
    # Order 4 (known at 01:30 next day) never sees itself; it sees orders 3 and 5.
    assert f["count_all"][1] == 2
    assert f["amount_max_all"][1] == 20


def test_forward_path_hides_parent_rows_from_the_future() -> None:
    path = LinkPath("orders", (Step(LINK_SHOP, True),))
    f = _features(ORDERS, _anchors(("1", ANCHOR), ("3", ANCHOR)), path)
    assert f["size"][0] == 3.0  # s1 opened in 2023
    assert np.isnan(f["size"][1])  # s2 opens 2024-02-01, after the anchor


def test_enumerated_paths_of_the_demo_graph() -> None:
    names = {p.name for p in enumerate_paths(flights_graph(), "flights")}
    assert "flights.tailnum->planes<-flights.tailnum" in names  # the plane's other flights
    assert "flights.origin->airports<-weather.origin" in names
    # departure outcomes, known at departure: their own table over the same relation
    assert "flights.origin->airports<-flights_departed.origin" in names
    assert "flights.carrier->airlines" not in names  # airlines have no numeric column
    planes = {p.name for p in enumerate_paths(flights_graph(), "planes")}
    assert "planes<-flights.tailnum.tailnum->planes" not in planes  # back to the start row
    assert "planes<-flights.tailnum.origin+time_hour->weather" in planes


def test_flight_known_at_is_after_scheduled_departure() -> None:
    # A flight's own outcome must never be visible at its own anchor (its departure).
    g = flights_graph()
    con = duckdb.connect()
    con.execute(
        "create table flights as select * from (values "
        "(timestamp '2013-05-01 10:00', -5, null), (timestamp '2013-05-01 10:00', null, null),"
        "(timestamp '2013-05-01 10:00', 20, 100)) v(scheduled_departure, dep_delay, air_time)"
    )
    for table in ("flights", "flights_departed"):
        known = g.table(table).known_at_as("f")
        rows = con.sql(f"select {known} > f.scheduled_departure from flights f").fetchall()
        assert rows == [(True,), (True,), (True,)], table
    assert g.table("flights_departed").source == "flights"


@pytest.mark.parametrize("bad", ["planes", "weather"])
def test_path_must_start_at_the_entity(bad: str) -> None:
    from dbt_rfm.errors import RfmError

    with pytest.raises(RfmError, match="does not start"):
        LinkPath(bad, (Step(LINK_USER, False),))


def _declared() -> GraphSpec:
    """The fixture graph as dbt declares it: the amount known at `paid_at` (available_at)."""
    return GraphSpec(
        (
            TableSpec("users", '"users"', ("user_id",), None,
                      (ColumnSpec("user_id", "varchar", "key"),)),
            TableSpec("orders", '"orders"', ("order_id",), "ts", (
                ColumnSpec("order_id", "integer", "key"),
                ColumnSpec("user_id", "varchar", "key"),
                ColumnSpec("ts", "timestamp", "timestamp"),
                ColumnSpec("delay_h", "integer", "numerical"),
                ColumnSpec("paid_at", "timestamp", "timestamp"),
                ColumnSpec("amount", "double", "numerical", available_at="paid_at"),
            )),
        ),
        (LINK_USER,),
    )  # fmt: skip


def test_declared_graph_splits_columns_by_when_they_are_known() -> None:
    graph = graph_from_spec(_declared())
    assert graph.table("orders").numeric == {"delay_h": '{t}."delay_h"'}
    assert graph.table("orders").known_at == '{t}."ts"'
    paid = graph.table("orders@paid_at")
    assert paid.numeric == {"amount": '{t}."amount"'} and paid.source == '"orders"'
    assert paid.known_at == '({t}."paid_at" + interval 1 microsecond)'
    assert LinkSpec("orders@paid_at", ("user_id",), "users", ("user_id",)) in graph.links
    assert graph.table("users").known_at is None


def test_target_aggregates_read_a_value_strictly_after_it_is_known() -> None:
    con = _con(ORDERS)
    con.execute("create table paid as select *, ts + to_hours(delay_h) as paid_at from orders")
    con.execute("drop table orders; alter table paid rename to orders")
    # u1 at 01-09 23:30: order 4 is placed then (known), but paid only at 01:30 next day;
    # at 01:30 itself its amount is still not known (strictly after), at 01:31 it is.
    times = [
        datetime(2024, 1, 9, 23, 30),
        datetime(2024, 1, 10, 1, 30),
        datetime(2024, 1, 10, 1, 31),
    ]
    anchors = _anchors(*(("u1", t) for t in times))
    windows = aggregate_windows()
    table = target_aggregates(con, _declared(), "users", windows, anchors)
    assert table is not None and table.column_names[:2] == ["entity_id", "anchor_time"]
    placed = table.column(f"{PREFIX}users<-orders.user_id:count_all").to_pylist()
    paid = table.column(f"{PREFIX}users<-orders@paid_at.user_id:count_all").to_pylist()
    last = table.column(f"{PREFIX}users<-orders@paid_at.user_id:amount_last").to_pylist()
    assert placed == [4, 4, 4] and paid == [3, 3, 4] and last == [20, 20, 99]
    # a tree head names the few it reads; a name the graph does not yield is an error
    name = f"{PREFIX}users<-orders@paid_at.user_id:amount_sum_7d"
    one = target_aggregates(con, _declared(), "users", windows, anchors, [name])
    assert one is not None and one.column_names == ["entity_id", "anchor_time", name]
    with pytest.raises(RfmError, match="amount_sum_7d.*fine-tune the target again"):
        target_aggregates(con, _declared(), "users", windows, anchors, [name.replace("7d", "2d")])


def test_target_windows_add_a_static_targets_history() -> None:
    static = {"history": {"windows": [3, 6, 24], "unit": "hours"}}
    assert target_windows(static) == (
        timedelta(hours=3), timedelta(hours=6), timedelta(days=1), timedelta(days=7),
        timedelta(days=30), None,
    )  # fmt: skip
    assert target_windows({"history": None}) == aggregate_windows()
