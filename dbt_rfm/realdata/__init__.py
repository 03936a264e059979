"""Real relational databases that ship in registry packages, loaded as SynthDB.

* :func:`load_jaffle_shop`: dbt's jaffle shop, simulated by ``jafgen`` (seeded);
* :func:`load_tpch`: TPC-H at a small scale factor, written by ``tpchgen-cli``.

nycflights13 is the held-out benchmark and is deliberately not offered here.
"""

from dbt_rfm.realdata.jaffle import JAFFLE_TABLES, load_jaffle_shop
from dbt_rfm.realdata.tables import TableDecl, build_db, normalize
from dbt_rfm.realdata.tpch import TPCH_TABLES, load_tpch

__all__ = [
    "JAFFLE_TABLES",
    "TPCH_TABLES",
    "TableDecl",
    "build_db",
    "load_jaffle_shop",
    "load_tpch",
    "normalize",
]
