"""Two-hop aggregates (lines -> orders -> users): path resolution and Python labels."""

from __future__ import annotations

import os
import random
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from rfm_runtime.schema import ITEM_HISTORY, SIBLING_HISTORY

from dbt_rfm.errors import RfmError
from dbt_rfm.labels import build_labels
from dbt_rfm.pql import Target, parse
from dbt_rfm.pql.paths import path_to_entity
from dbt_rfm.spec import ColumnSpec, GraphSpec, LinkSpec, TableSpec
from dbt_rfm.targets import targets_from_manifest

T0 = datetime(2024, 1, 1)
REPO = Path(__file__).resolve().parents[1]


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
    with pytest.raises(RfmError, match="model 'orders' has no link to the entity 'lines'"):
        parse("PREDICT COUNT(orders.*, 0, 7) FOR EACH lines.line_id", g)


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


# -- the macros, on a small dbt project: customers <- orders <- lines ------------------------

PROJECT_FILES = {
    "dbt_project.yml": """
name: two_hop
version: "0.1.0"
config-version: 2
profile: two_hop
models:
  two_hop:
    +materialized: table
vars:
  "dbt_rfm:graph_models": [customers, orders, lines]
""",
    "profiles.yml": """
two_hop:
  target: dev
  outputs:
    dev: {type: duckdb, path: "{{ env_var('RFM_DUCKDB_PATH') }}", threads: 1}
""",
    "models/customers.sql": "select range as customer_id from range(1, 31)",
    "models/orders.sql": (
        "select range as order_id, 1 + (range * 7) % 30 as customer_id, "
        "timestamp '2024-01-01' + range * interval 5 hour as ordered_at from range(0, 400)"
    ),
    "models/lines.sql": (
        "select range as line_id, (range * 13) % 400 as order_id, "
        "timestamp '2024-01-01' + ((range * 37) % 3000) * interval 1 hour as shipped_at, "
        "1 + range % 7 as qty from range(0, 1500)"
    ),
    "models/schema.yml": """
version: 2
models:
  - name: customers
    config:
      meta:
        rfm:
          targets:
            - name: qty_14d
              aggregate: {fn: sum, table: lines, column: qty, start: 0, end: 14,
                          where: {column: qty, op: ">", value: 2}}
              entity_filter:
                aggregate: {fn: count, table: orders, start: -30, end: 0}
                cast: {op: ">", value: 0}
              anchors: {spine: {start: "2024-01-15", step: 10}}
            - name: any_line_7d
              aggregate: {fn: exists, table: lines, end: 7, via: orders}
    columns:
      - name: customer_id
        constraints: [{type: primary_key}]
  - name: orders
    config: {meta: {rfm: {time_column: ordered_at}}}
    columns:
      - name: order_id
        constraints: [{type: primary_key}]
      - name: customer_id
        constraints: [{type: foreign_key, to: "ref('customers')", to_columns: [customer_id]}]
  - name: lines
    config: {meta: {rfm: {time_column: shipped_at}}}
    columns:
      - name: line_id
        constraints: [{type: primary_key}]
      - name: order_id
        constraints: [{type: foreign_key, to: "ref('orders')", to_columns: [order_id]}]
""",
}


def test_two_hop_macro_labels(tmp_path: Path) -> None:
    from dbt.cli.main import dbtRunner

    root = tmp_path / "project"
    for name, text in PROJECT_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    (root / "dbt_packages").mkdir()
    (root / "dbt_packages" / "dbt_rfm").symlink_to(REPO)
    db = tmp_path / "two_hop.duckdb"
    old = os.environ.get("RFM_DUCKDB_PATH")
    os.environ["RFM_DUCKDB_PATH"] = str(db)
    try:
        result = dbtRunner().invoke(
            [
                "run",
                "--select",
                "+rfm_labels",
                "+rfm_item_history",
                "+rfm_sibling_history",
                "--project-dir",
                str(root),
                "--profiles-dir",
                str(root),
                "--target-path",
                str(tmp_path / "target"),
                "--log-path",
                str(tmp_path / "logs"),
                "--quiet",
            ]
        )
    finally:
        if old is None:
            del os.environ["RFM_DUCKDB_PATH"]
        else:
            os.environ["RFM_DUCKDB_PATH"] = old
    assert result.success, result.exception
    with duckdb.connect(str(db)) as con:
        g = GraphSpec.from_rows(
            con.sql("select * from rfm_graph_spec").to_arrow_table().to_pylist()
        )
        targets = targets_from_manifest(tmp_path / "target" / "manifest.json", g)
        # no ranking or static target: the history models are typed empty tables
        for model, schema in (
            ("rfm_item_history", ITEM_HISTORY),
            ("rfm_sibling_history", SIBLING_HISTORY),
        ):
            empty = con.sql(f"select * from {model}").to_arrow_table()
            assert empty.num_rows == 0 and empty.column_names == ["target_name", *schema.names]
        lines = (
            con.sql(
                "select o.customer_id, l.shipped_at, l.qty "
                "from lines as l join orders as o using (order_id)"
            )
            .to_arrow_table()
            .to_pylist()
        )
        for target in targets:
            anchors = con.sql(
                "select entity_id, anchor_time from rfm_anchors "
                f"where target_name = '{target.name}' and role = 'context'"
            ).to_arrow_table()
            want = con.sql(
                "select entity_id, anchor_time, label, label_class, label_items from rfm_labels "
                f"where target_name = '{target.name}' order by entity_id, anchor_time"
            ).to_arrow_table()
            assert anchors.num_rows > 50
            got = build_labels(con, g, target, anchors)
            assert got.cast(want.schema).equals(want), target.name
            # and a brute force over the joined rows
            end = 14 if target.name == "qty_14d" else 7
            brute = {}
            for r in anchors.to_pylist():
                e, t = r["entity_id"], r["anchor_time"]
                rows = [
                    x
                    for x in lines
                    if str(x["customer_id"]) == e and t < x["shipped_at"] <= t + timedelta(days=end)
                ]
                brute[(e, t)] = (
                    float(sum(x["qty"] for x in rows if x["qty"] > 2))
                    if target.name == "qty_14d"
                    else float(len(rows) > 0)
                )
            labels = {(r["entity_id"], r["anchor_time"]): r["label"] for r in want.to_pylist()}
            assert labels == brute, target.name
            assert sum(labels.values()) > 0
