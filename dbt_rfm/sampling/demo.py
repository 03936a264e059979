"""The nycflights13 demo graph, loaded into DuckDB without dbt, for sampler tests and benchmarks.

The demo's dbt models (``integration_tests/models/demo/*.sql``) are run as plain SQL over the
raw CSVs from the ``nycflights13`` package, so the data is the demo's data; the graph is the
one the demo YAML declares, written here as a GraphSpec (until the manifest reader is used).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa

from dbt_rfm.demo_data import NYCFLIGHTS13_TABLES, read_nycflights13
from dbt_rfm.errors import RfmError
from dbt_rfm.spec import ColumnSpec, GraphSpec, LinkSpec, TableSpec
from dbt_rfm.stypes import infer_stype

__all__ = [
    "DEMO_AVAILABLE",
    "DEMO_KEYS",
    "DEMO_LINKS",
    "DEMO_TIMES",
    "demo_graph",
    "demo_tables",
    "load_demo",
]

DEMO_MODELS = Path(__file__).resolve().parents[2] / "integration_tests" / "models" / "demo"

#: Primary keys, links and time columns the demo YAML declares.
DEMO_KEYS = {
    "airlines": ("carrier",),
    "airports": ("faa",),
    "flights": ("flight_id",),
    "planes": ("tailnum",),
    "weather": ("origin", "time_hour"),
}
DEMO_LINKS = (
    LinkSpec("flights", ("tailnum",), "planes", ("tailnum",)),
    LinkSpec("flights", ("carrier",), "airlines", ("carrier",)),
    LinkSpec("flights", ("origin",), "airports", ("faa",)),
    LinkSpec("flights", ("dest",), "airports", ("faa",)),
    LinkSpec("flights", ("origin", "time_hour"), "weather", ("origin", "time_hour")),
    LinkSpec("weather", ("origin",), "airports", ("faa",)),
)
DEMO_TIMES = {"flights": "scheduled_departure", "weather": "time_hour"}
#: Availability times (``meta.rfm.available_at``) the demo YAML declares.
DEMO_AVAILABLE = {
    ("flights", "dep_delay"): "departed_at",
    ("flights", "cancelled"): "departed_at",
    ("flights", "arr_delay"): "arrived_at",
    ("flights", "air_time"): "arrived_at",
}
_CATEGORICAL = {("flights", "flight_number")}


def load_demo(con: Any, schema: str = "main") -> None:
    """Create the demo tables (flights, planes, airlines, airports, weather) in ``con``.

    Args:
        con: a DuckDB connection.
        schema: schema to create them in.
    """
    if not DEMO_MODELS.is_dir():
        raise RfmError(f"demo models not found at {DEMO_MODELS} (needs the source checkout)")
    con.execute(f"create schema if not exists {schema}")
    for name in NYCFLIGHTS13_TABLES:
        raw = read_nycflights13(name)  # noqa: F841 -- read by DuckDB's replacement scan
        con.execute(f"create or replace table {schema}.raw_{name} as select * from raw")
    for name in NYCFLIGHTS13_TABLES:
        sql = (DEMO_MODELS / f"{name}.sql").read_text()
        sql = re.sub(r"\{\{\s*ref\(\s*'(\w+)'\s*\)\s*\}\}", rf"{schema}.\1", sql)
        con.execute(f"create or replace table {schema}.{name} as {sql}")


def demo_graph(con: Any, schema: str = "main") -> GraphSpec:
    """GraphSpec of the demo tables in ``con`` (column types read from the warehouse)."""
    key_cols = {(lk.child, c) for lk in DEMO_LINKS for c in lk.child_columns}
    key_cols |= {(t, c) for t, cols in DEMO_KEYS.items() for c in cols}
    tables = []
    for name in sorted(DEMO_KEYS):
        rows = con.execute(
            "select column_name, lower(data_type) from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, name],
        ).fetchall()
        cols = tuple(
            ColumnSpec(c, dt, _stype(name, c, dt, key_cols), DEMO_AVAILABLE.get((name, c)))
            for c, dt in rows
        )
        tables.append(
            TableSpec(name, f"{schema}.{name}", DEMO_KEYS[name], DEMO_TIMES.get(name), cols)
        )
    return GraphSpec(tables=tuple(tables), links=DEMO_LINKS)


def demo_tables(con: Any, spec: GraphSpec) -> dict[str, pa.Table]:
    """The demo tables as Arrow, by model name."""
    return {t.name: con.sql(f"select * from {t.relation}").to_arrow_table() for t in spec.tables}


def _stype(table: str, col: str, data_type: str, key_cols: set[tuple[str, str]]) -> str:
    if (table, col) in key_cols:
        return "key"
    if (table, col) in _CATEGORICAL:
        return "categorical"
    return infer_stype(data_type) or "numerical"
