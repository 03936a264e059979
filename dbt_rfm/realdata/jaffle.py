"""The jaffle shop (dbt's demo shop), simulated by the ``jafgen`` package, as a SynthDB.

jafgen has no seed option: it draws from ``random``, ``numpy.random``, Faker and
``uuid.uuid4``. :func:`load_jaffle_shop` runs it in a child Python process with all four
seeded (``uuid4`` replaced by a seeded one), in a temporary folder, and reads the CSVs it
writes, so the same seed gives the same shop and this process's global random state is
untouched. One simulated year takes about 6 s and gives ~900 customers and ~70k orders.

Graph: customers, stores (created at ``opened_at``), products, supplies (composite key
``id, sku``), orders, items and tweets. ``items`` carries its order's ``ordered_at`` as its
time column, so order lines are not visible before their order.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dbt_rfm.errors import RfmError
from dbt_rfm.realdata.tables import TableDecl, build_db, normalize
from dbt_rfm.synth.db import SynthDB

JAFFLE_TABLES = ("customers", "orders", "items", "products", "stores", "supplies", "tweets")

DECLS = {
    "customers": TableDecl(("id",), text=("name",)),
    "stores": TableDecl(("id",), "opened_at"),
    "products": TableDecl(("sku",), text=("name", "description")),
    "supplies": TableDecl(("id", "sku"), links=((("sku",), "products"),), text=("name",)),
    "orders": TableDecl(
        ("id",), "ordered_at", links=((("customer",), "customers"), (("store_id",), "stores"))
    ),
    "items": TableDecl(
        ("id",), "ordered_at", links=((("order_id",), "orders"), (("sku",), "products"))
    ),
    "tweets": TableDecl(
        ("id",), "tweeted_at", links=((("user_id",), "customers"),), text=("content",)
    ),
}

_RUN = """
import random, sys, uuid
import numpy as np
seed, years, scale = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
rng = random.Random(seed)
uuid.uuid4 = lambda: uuid.UUID(int=rng.getrandbits(128), version=4)
random.seed(seed)
np.random.seed(seed)
from faker import Faker
from jafgen.simulation import Simulation
from jafgen.stores.market import Market
Faker.seed(seed)
_init = Market.__init__
def _scaled(self, store, num_customers, *args, **kwargs):
    _init(self, store, int(num_customers * scale), *args, **kwargs)
Market.__init__ = _scaled
sim = Simulation(years, "raw")
sim.run_simulation()
sim.save_results()
"""


def load_jaffle_shop(seed: int = 0, years: int = 1, scale: float = 1.0) -> SynthDB:
    """Simulate the jaffle shop for ``years`` years with ``seed`` and load it.

    Args:
        seed: seeds every random source jafgen uses.
        years: simulated years (stores open on days 0, 192, 605, 615, 920 and 1107).
        scale: fraction of jafgen's market sizes (customers per store); run time and row
            counts scale with it.

    Returns:
        The database named ``jaffle_shop``.

    Raises:
        RfmError: jafgen is not installed or the simulation failed.
    """
    if years < 1 or not 0 < scale <= 1:
        raise RfmError(
            f"jaffle shop: expected years >= 1 and 0 < scale <= 1, found {years} and {scale}"
        )
    with tempfile.TemporaryDirectory(prefix="rfm_jaffle_") as tmp:
        done = subprocess.run(
            [sys.executable, "-c", _RUN, str(seed), str(years), str(scale)],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            hint = (
                " (pip install 'dbt-rfm[dev]' for jafgen)"
                if "No module named 'jafgen'" in done.stderr
                else ""
            )
            raise RfmError(f"jafgen failed{hint}: {done.stderr[-500:]}")
        raw = {t: _read(Path(tmp) / "jaffle-data" / f"raw_{t}.csv") for t in JAFFLE_TABLES}
    raw["stores"] = raw["stores"].set_column(
        raw["stores"].column_names.index("tax_rate"),
        "tax_rate",
        pc.cast(raw["stores"]["tax_rate"], pa.float64()),
    )
    raw["items"] = _with_order_time(raw["items"], raw["orders"])
    return build_db("jaffle_shop", raw, DECLS)


def _read(path: Path) -> pa.Table:
    opts = pacsv.ConvertOptions(
        strings_can_be_null=False,
        column_types={"id": pa.string(), "tax_rate": pa.string(), "perishable": pa.bool_()},
    )
    return normalize(pacsv.read_csv(path, convert_options=opts))


def _with_order_time(items: pa.Table, orders: pa.Table) -> pa.Table:
    """Add each item's order time (``ordered_at``) after its key and links."""
    idx = pc.index_in(items["order_id"], value_set=orders["id"])
    if idx.null_count:
        raise RfmError(f"model 'items', column 'order_id': {idx.null_count} ids have no order")
    return items.append_column("ordered_at", orders["ordered_at"].take(idx))
