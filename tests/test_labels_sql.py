"""dbt_rfm.labels (the Python label SQL) against a plain-Python reference on synthetic data."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from dbt_rfm.labels import add_interval, build_labels
from dbt_rfm.pql import Target, parse, validate
from dbt_rfm.spec import ColumnSpec, GraphSpec, LinkSpec, TableSpec

T0 = datetime(2024, 1, 1)


def _graph() -> GraphSpec:
    return GraphSpec(
        tables=(
            TableSpec(
                "users",
                "users",
                ("user_id",),
                None,
                (
                    ColumnSpec("user_id", "bigint", "key"),
                    ColumnSpec("tier", "varchar", "categorical"),
                ),
            ),
            TableSpec(
                "items", "items", ("item_id",), None, (ColumnSpec("item_id", "varchar", "key"),)
            ),
            TableSpec(
                "orders",
                "orders",
                ("order_id",),
                "ordered_at",
                (
                    ColumnSpec("order_id", "bigint", "key"),
                    ColumnSpec("user_id", "bigint", "key"),
                    ColumnSpec("item_id", "varchar", "key"),
                    ColumnSpec("ordered_at", "timestamp", "timestamp"),
                    ColumnSpec("amount", "double", "numerical"),
                    ColumnSpec("status", "varchar", "categorical"),
                ),
            ),
        ),
        links=(
            LinkSpec("orders", ("user_id",), "users", ("user_id",)),
            LinkSpec("orders", ("item_id",), "items", ("item_id",)),
        ),
    )


@pytest.fixture(scope="module")
def data() -> tuple[duckdb.DuckDBPyConnection, list[dict], list[tuple[str, datetime]]]:
    rng = random.Random(7)
    anchors = [(str(u), T0 + timedelta(days=d)) for u in range(1, 7) for d in (0, 10, 20)]
    orders = []
    for i in range(400):
        orders.append(
            {
                "order_id": i,
                "user_id": rng.randint(1, 5),  # user 6 never orders
                "item_id": rng.choice("abcdef"),
                "ordered_at": T0 + timedelta(hours=rng.randint(-24 * 10, 24 * 40)),
                "amount": rng.choice([None, round(rng.uniform(1, 100), 2)]),
                "status": rng.choice(["paid", "refunded"]),
            }
        )
    # window edges: exactly at anchor (excluded) and exactly at anchor + 7 days (included)
    for j, (u, t) in enumerate([("1", T0), ("2", T0 + timedelta(days=10))]):
        orders.append(
            {
                "order_id": 1000 + 2 * j,
                "user_id": int(u),
                "item_id": "z",
                "ordered_at": t,
                "amount": 1000.0,
                "status": "paid",
            }
        )
        orders.append(
            {
                "order_id": 1001 + 2 * j,
                "user_id": int(u),
                "item_id": "y",
                "ordered_at": t + timedelta(days=7),
                "amount": 2000.0,
                "status": "paid",
            }
        )
    con = duckdb.connect()
    con.register("orders_in", pa.Table.from_pylist(orders))
    con.execute("create table orders as select * from orders_in").complete()
    con.execute(
        "create table users as select range as user_id, 'x' as tier from range(1, 7)"
    ).complete()
    return con, orders, anchors


def _ref_value(fn: str, vals: list, ordered: list) -> object:
    if fn in ("COUNT", "EXISTS"):
        return len(vals)
    if fn == "SUM":
        return sum(vals)
    if fn == "COUNT_DISTINCT":
        return len(set(vals))
    if not vals:
        return None  # AVG / MIN / MAX / FIRST / LAST / LIST_DISTINCT drop empty windows
    return {
        "AVG": lambda: sum(vals) / len(vals),
        "MIN": lambda: min(vals),
        "MAX": lambda: max(vals),
        "FIRST": lambda: ordered[0],
        "LAST": lambda: ordered[-1],
        "LIST_DISTINCT": lambda: sorted(set(vals)),
    }[fn]()


def _reference(target: Target, orders: list[dict], anchors: list[tuple[str, datetime]]) -> dict:
    """Labels by brute force: (entity_id, anchor_time) -> label / class / items."""
    agg = target.aggregate
    assert agg is not None
    out = {}
    for u, t in anchors:
        lo, hi = add_interval(t, agg.start or 0, agg.unit), add_interval(t, agg.end, agg.unit)
        rows = [o for o in orders if str(o["user_id"]) == u and lo < o["ordered_at"] <= hi]
        if agg.where is not None:
            rows = [o for o in rows if o["status"] == "paid"]
        vals = rows if agg.column == "*" else [o[agg.column] for o in rows]
        vals = [v for v in vals if v is not None]
        ordered = sorted(
            (o["ordered_at"], o[agg.column])
            for o in rows
            if agg.column != "*" and o[agg.column] is not None
        )
        value = _ref_value(agg.fn, vals, [v for _, v in ordered])
        if value is None:
            continue  # AVG / MIN / MAX / FIRST / LAST / LIST_DISTINCT drop empty windows
        if target.cast is not None:
            value = float(value > target.cast.value)  # type: ignore[operator]
        elif agg.fn == "EXISTS":
            value = float(value > 0)
        out[(u, t)] = value
    return out


QUERIES = [
    "PREDICT COUNT(orders.*, 0, 7, days) FOR EACH users.user_id",
    "PREDICT COUNT(orders.* WHERE orders.status = 'paid', 0, 7, days) > 2 FOR EACH users.user_id",
    "PREDICT EXISTS(orders.*, 0, 7) FOR EACH users.user_id",
    "PREDICT SUM(orders.amount, 0, 7) FOR EACH users.user_id",
    "PREDICT AVG(orders.amount, 0, 2, weeks) FOR EACH users.user_id",
    "PREDICT MIN(orders.amount, 0, 36, hours) FOR EACH users.user_id",
    "PREDICT MAX(orders.amount, 3, 7) FOR EACH users.user_id",
    "PREDICT COUNT_DISTINCT(orders.item_id, 0, 7) FOR EACH users.user_id",
    "PREDICT FIRST(orders.status, 0, 7) FOR EACH users.user_id",
    "PREDICT LAST(orders.amount, 0, 1, months) FOR EACH users.user_id",
    "PREDICT LIST_DISTINCT(orders.item_id, 0, 7) RANK TOP 3 FOR EACH users.user_id",
]


@pytest.mark.parametrize("query", QUERIES)
def test_labels_match_brute_force(data: tuple, query: str) -> None:
    con, orders, anchors = data
    target = parse(query, _graph())
    validate(target, _graph())
    table = pa.table({"entity_id": [u for u, _ in anchors], "anchor_time": [t for _, t in anchors]})
    got_rows = build_labels(con, _graph(), target, table).to_pylist()
    got = {}
    for r in got_rows:
        key = (r["entity_id"], r["anchor_time"])
        got[key] = {
            "regression": r["label"],
            "binary": r["label"],
            "ranking": r["label_items"],
            "multiclass": r["label_class"],
        }[target.task]
    want = _reference(target, orders, anchors)
    assert set(got) == set(want)
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value)
        else:
            assert got[key] == value


def test_window_edges_and_empty_entities(data: tuple) -> None:
    con, _, _ = data
    target = parse(
        "PREDICT SUM(orders.amount WHERE orders.amount >= 1000, 0, 7) FOR EACH users.user_id",
        _graph(),
    )
    anchors = pa.table(
        {"entity_id": ["1", "2", "6"], "anchor_time": [T0, T0 + timedelta(days=10), T0]}
    )
    rows = {
        r["entity_id"]: r["label"] for r in build_labels(con, _graph(), target, anchors).to_pylist()
    }
    # the row exactly at the anchor is out, the row exactly at anchor + 7 days is in
    assert rows == {"1": 2000.0, "2": 2000.0, "6": 0.0}


def test_no_row_after_window_end_is_read(data: tuple) -> None:
    con, _, _ = data
    target = parse("PREDICT AVG(orders.amount, 0, 7) FOR EACH users.user_id", _graph())
    t = T0 + timedelta(days=10)
    end = t + timedelta(days=7)
    table = pa.table({"entity_id": [str(u) for u in range(1, 7)], "anchor_time": [t] * 6})
    before = build_labels(con, _graph(), target, table)
    assert before.num_rows > 0
    # rewrite every row later than anchor + 7 days, and add rows one second after it
    con.execute("create temp table orders_future as select * from orders").complete()
    con.execute(
        "update orders_future set amount = -amount * 97 where ordered_at > ?", [end]
    ).complete()
    con.execute(
        "insert into orders_future select 9000 + user_id, user_id, 'q', "
        "? + interval 1 second, 1e9, 'paid' from users",
        [end],
    )
    after = build_labels(con, _graph(), target, table, relations={"orders": "orders_future"})
    assert after.equals(before)
    # ...while a row exactly at anchor + 7 days does move a label
    con.execute("insert into orders_future values (9999, 1, 'q', ?, 1e9, 'paid')", [end]).complete()
    moved = build_labels(con, _graph(), target, table, relations={"orders": "orders_future"})
    assert not moved.equals(before)
