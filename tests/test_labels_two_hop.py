"""Two-hop aggregates (lines -> orders -> users): path resolution and Python labels."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from dbt_rfm.errors import RfmError
from dbt_rfm.labels import build_labels
from dbt_rfm.pql import Target, parse
from dbt_rfm.pql.paths import path_to_entity
from dbt_rfm.spec import ColumnSpec, GraphSpec, LinkSpec, TableSpec

T0 = datetime(2024, 1, 1)


def _cols(*spec: str) -> tuple[ColumnSpec, ...]:
    return tuple(ColumnSpec(*s.split(":")) for s in spec)


def graph(extra_links: tuple[LinkSpec, ...] = ()) -> GraphSpec:
    return GraphSpec(
        tables=(
            TableSpec("users", "users", ("user_id",), None, _cols("user_id:bigint:key")),
            TableSpec(
                "shops",
                "shops",
                ("shop_id",),
                None,
                _cols("shop_id:bigint:key", "owner_id:bigint:key"),
            ),
            TableSpec(
                "orders",
                "orders",
                ("order_id",),
                "ordered_at",
                _cols(
                    "order_id:bigint:key",
                    "user_id:bigint:key",
                    "shop_id:bigint:key",
                    "ordered_at:timestamp:timestamp",
                ),
            ),
            TableSpec(
                "lines",
                "lines",
                ("line_id",),
                "shipped_at",
                _cols(
                    "line_id:bigint:key",
                    "order_id:bigint:key",
                    "shipped_at:timestamp:timestamp",
                    "qty:bigint:numerical",
                ),
            ),
        ),
        links=(
            LinkSpec("orders", ("user_id",), "users", ("user_id",)),
            LinkSpec("lines", ("order_id",), "orders", ("order_id",)),
            *extra_links,
        ),
    )


SHOP_LINKS = (
    LinkSpec("orders", ("shop_id",), "shops", ("shop_id",)),
    LinkSpec("lines", ("shop_id",), "shops", ("shop_id",)),
    LinkSpec("shops", ("owner_id",), "users", ("user_id",)),
)


def test_path_resolution() -> None:
    g = graph()
    target = parse("PREDICT SUM(lines.qty, 0, 7) FOR EACH users.user_id", g)
    assert target.aggregate is not None
    path = path_to_entity(g, target.aggregate, "users", "t")
    assert [lk.name for lk in path] == ["lines.order_id->orders", "orders.user_id->users"]
    # direct links win: orders is a child of users
    agg = parse("PREDICT COUNT(orders.*, 0, 7) FOR EACH users.user_id", g).aggregate
    assert agg is not None and len(path_to_entity(g, agg, "users", "t")) == 1


def test_path_errors() -> None:
    # lines reach users through orders and through shops: ambiguous without via / link
    g = graph(SHOP_LINKS)
    with pytest.raises(RfmError, match="reaches 'users' in several ways .*aggregate.via"):
        parse("PREDICT SUM(lines.qty, 0, 7) FOR EACH users.user_id", g)
    # orders is a direct child of users and a grandchild through shops: direct wins
    agg = parse("PREDICT COUNT(orders.*, 0, 7) FOR EACH users.user_id", g).aggregate
    assert agg is not None and len(path_to_entity(g, agg, "users", "t")) == 1
    raw = {
        "name": "t",
        "aggregate": {"fn": "sum", "table": "lines", "column": "qty", "end": 7, "via": "shops"},
    }
    t = Target.from_dict(raw, entity="users")
    assert t.aggregate is not None
    assert [lk.name for lk in path_to_entity(g, t.aggregate, "users", "t")] == [
        "lines.shop_id->shops",
        "shops.owner_id->users",
    ]
    by_link = Target.from_dict(
        {**raw, "aggregate": {**raw["aggregate"], "via": None, "link": ["order_id"]}},
        entity="users",
    )
    assert by_link.aggregate is not None
    assert path_to_entity(g, by_link.aggregate, "users", "t")[0].parent == "orders"
    raw["aggregate"]["via"] = "shopz"  # type: ignore[index]
    with pytest.raises(RfmError, match="aggregate.via names no model 'shopz' \\(did you mean"):
        path_to_entity(g, Target.from_dict(raw, entity="users").aggregate, "users", "t")  # type: ignore[arg-type]
    with pytest.raises(RfmError, match="model 'users' has no link to the entity 'shops'"):
        parse("PREDICT COUNT(users.*, 0, 7) FOR EACH shops.shop_id", g)


def test_two_hop_labels_match_brute_force() -> None:
    rng = random.Random(3)
    orders = [
        {
            "order_id": i,
            "user_id": rng.randint(1, 4),
            "shop_id": 1,
            "ordered_at": T0 + timedelta(hours=rng.randint(0, 24 * 30)),
        }
        for i in range(60)
    ]
    lines = [
        {
            "line_id": i,
            "order_id": rng.randint(0, 59),
            "shipped_at": T0 + timedelta(hours=rng.randint(0, 24 * 40)),
            "qty": rng.randint(1, 9),
        }
        for i in range(300)
    ]
    lines.append(
        {"line_id": 999, "order_id": None, "shipped_at": T0 + timedelta(days=1), "qty": 100}
    )  # no order: reaches no user
    anchors = [(str(u), T0 + timedelta(days=d)) for u in range(1, 6) for d in (0, 9, 18)]
    con = duckdb.connect()
    for name, rows in (("orders", orders), ("lines", lines)):
        con.register(f"{name}_in", pa.Table.from_pylist(rows))
        con.execute(f"create table {name} as select * from {name}_in").complete()
    target = parse(
        "PREDICT SUM(lines.qty WHERE lines.qty > 2, 0, 7) FOR EACH users.user_id", graph()
    )
    table = pa.table({"entity_id": [u for u, _ in anchors], "anchor_time": [t for _, t in anchors]})
    got = {
        (r["entity_id"], r["anchor_time"]): r["label"]
        for r in build_labels(con, graph(), target, table).to_pylist()
    }
    user_of = {o["order_id"]: o["user_id"] for o in orders}
    want = {
        (u, t): float(
            sum(
                ln["qty"]
                for ln in lines
                if ln["order_id"] is not None
                and str(user_of[ln["order_id"]]) == u
                and t < ln["shipped_at"] <= t + timedelta(days=7)
                and ln["qty"] > 2
            )
        )
        for u, t in anchors
    }
    assert got == want
    assert got[("5", T0)] == 0.0 and max(got.values()) > 0
