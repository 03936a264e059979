"""TPC-H at a small scale factor, written by the ``tpchgen-cli`` package, as a SynthDB.

``tpchgen-cli`` (PyPI, a Rust binary in the wheel) writes the eight TPC-H tables as Parquet,
deterministically for a scale factor. Choices, for leakage-free time travel:

* ``lineitem``'s time is ``l_receiptdate``, the last of its dates, so no value in a visible
  row lies after the anchor; ``l_commitdate`` becomes ``l_days_late`` (receipt - commit).
* ``o_orderstatus``, ``l_returnflag`` and ``l_linestatus`` are dropped: TPC-H derives them from
  a fixed "current date" (1995-06-17), so they describe the future of earlier rows.
* Names, addresses, phones, comments and the constant ``o_shippriority`` are dropped.

In TPC-H a customer's orders in one window barely predict the next: use it for scale and as
a leakage check, not for accuracy (see FIELD_NOTES).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dbt_rfm.errors import RfmError
from dbt_rfm.realdata.tables import TableDecl, build_db, normalize, select
from dbt_rfm.synth.db import SynthDB

TPCH_TABLES = ("customer", "orders", "lineitem", "nation", "region", "part", "supplier", "partsupp")

COLUMNS = {
    "region": ("r_regionkey", "r_name"),
    "nation": ("n_nationkey", "n_regionkey", "n_name"),
    "supplier": ("s_suppkey", "s_nationkey", "s_acctbal"),
    "customer": ("c_custkey", "c_nationkey", "c_acctbal", "c_mktsegment"),
    "part": (
        "p_partkey",
        "p_name",
        "p_mfgr",
        "p_brand",
        "p_type",
        "p_size",
        "p_container",
        "p_retailprice",
    ),
    "partsupp": ("ps_partkey", "ps_suppkey", "ps_availqty", "ps_supplycost"),
    "orders": (
        "o_orderkey",
        "o_custkey",
        "o_orderdate",
        "o_totalprice",
        "o_orderpriority",
        "o_clerk",
    ),
    "lineitem": (
        "l_orderkey",
        "l_linenumber",
        "l_partkey",
        "l_suppkey",
        "l_receiptdate",
        "l_shipdate",
        "l_days_late",
        "l_quantity",
        "l_extendedprice",
        "l_discount",
        "l_tax",
        "l_shipinstruct",
        "l_shipmode",
    ),
}

DECLS = {
    "region": TableDecl(("r_regionkey",)),
    "nation": TableDecl(("n_nationkey",), links=((("n_regionkey",), "region"),)),
    "supplier": TableDecl(("s_suppkey",), links=((("s_nationkey",), "nation"),)),
    "customer": TableDecl(("c_custkey",), links=((("c_nationkey",), "nation"),)),
    "part": TableDecl(("p_partkey",), text=("p_name", "p_type")),
    "partsupp": TableDecl(
        ("ps_partkey", "ps_suppkey"),
        links=((("ps_partkey",), "part"), (("ps_suppkey",), "supplier")),
    ),
    "orders": TableDecl(("o_orderkey",), "o_orderdate", links=((("o_custkey",), "customer"),)),
    "lineitem": TableDecl(
        ("l_orderkey", "l_linenumber"),
        "l_receiptdate",
        links=(
            (("l_orderkey",), "orders"),
            (("l_partkey",), "part"),
            (("l_suppkey",), "supplier"),
            (("l_partkey", "l_suppkey"), "partsupp"),
        ),
    ),
}


def tpchgen_path() -> str:
    """The ``tpchgen-cli`` executable (beside the running Python first, then on PATH)."""
    beside = Path(sys.executable).parent / "tpchgen-cli"
    found = str(beside) if beside.exists() else shutil.which("tpchgen-cli")
    if found is None:
        raise RfmError("TPC-H needs the 'tpchgen-cli' package: pip install 'dbt-rfm[train]'")
    return found


def load_tpch(scale_factor: float = 0.01) -> SynthDB:
    """Generate TPC-H at ``scale_factor`` into a temporary folder and load it.

    Args:
        scale_factor: TPC-H scale (0.01: 1,500 customers, 15,000 orders, ~60,000 lines).

    Returns:
        The database named ``tpch_sf<scale_factor>``.
    """
    if not 0 < scale_factor <= 1:
        raise RfmError(f"TPC-H scale factor must lie in (0, 1], found {scale_factor}")
    with tempfile.TemporaryDirectory(prefix="rfm_tpch_") as tmp:
        cmd = [tpchgen_path(), "parquet", "-s", str(scale_factor), "-o", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RfmError(f"tpchgen-cli failed ({done.returncode}): {done.stderr[-500:]}")
        raw = {t: normalize(pq.read_table(Path(tmp) / f"{t}.parquet")) for t in TPCH_TABLES}
    li = raw["lineitem"]
    late = pc.divide(
        pc.subtract(
            pc.cast(li["l_receiptdate"], pa.int64()), pc.cast(li["l_commitdate"], pa.int64())
        ),
        86_400_000_000,
    )
    raw["lineitem"] = li.append_column("l_days_late", late)
    tables = {t: select(raw[t], COLUMNS[t]) for t in TPCH_TABLES}
    return build_db(f"tpch_sf{scale_factor}", tables, DECLS)
