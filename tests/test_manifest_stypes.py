"""dbt_rfm.stypes: type families and stype inference; column types from DuckDB."""

from __future__ import annotations

import duckdb
import pytest

from dbt_rfm.manifest import column_types_from_duckdb
from dbt_rfm.stypes import infer_stype, type_family


@pytest.mark.parametrize(
    ("data_type", "family"),
    [
        ("BIGINT", "integer"),
        ("integer", "integer"),
        ("SMALLINT", "integer"),
        ("HUGEINT", "integer"),
        ("DECIMAL(38,0)", "integer"),
        ("NUMBER(38, 0)", "integer"),
        ("NUMBER", "integer"),
        ("DECIMAL(18,3)", "decimal"),
        ("numeric", "decimal"),
        ("DOUBLE", "float"),
        ("double precision", "float"),
        ("VARCHAR", "text"),
        ("character varying(256)", "text"),
        ("TEXT", "text"),
        ("BOOLEAN", "boolean"),
        ("DATE", "date"),
        ("TIMESTAMP", "timestamp"),
        ("TIMESTAMP_S", "timestamp"),
        ("TIMESTAMP WITH TIME ZONE", "timestamp"),
        ("TIMESTAMP_NTZ(9)", "timestamp"),
        ("DATETIME", "timestamp"),
        ("INTEGER[]", "list"),
        ("UUID", "uuid"),
        ("STRUCT(a INTEGER)", "struct"),
    ],
)
def test_type_family(data_type: str, family: str) -> None:
    assert type_family(data_type) == family


@pytest.mark.parametrize(
    ("data_type", "stype"),
    [
        ("BIGINT", "numerical"),
        ("DECIMAL(18,3)", "numerical"),
        ("REAL", "numerical"),
        ("BOOLEAN", "boolean"),
        ("DATE", "timestamp"),
        ("TIMESTAMP", "timestamp"),
        ("VARCHAR", "categorical"),
        ("BLOB", None),
        ("INTEGER[]", None),
    ],
)
def test_infer_stype(data_type: str, stype: str | None) -> None:
    assert infer_stype(data_type) == stype


def test_column_types_from_duckdb_in_table_order() -> None:
    con = duckdb.connect()
    con.execute("create schema s")
    con.execute("create table s.t (b varchar, a bigint, c decimal(10, 2), d timestamp)")
    con.execute("create view s.v as select a, b from s.t")
    types = column_types_from_duckdb(con)
    assert types['"memory"."s"."t"'] == [
        ("b", "VARCHAR"),
        ("a", "BIGINT"),
        ("c", "DECIMAL(10,2)"),
        ("d", "TIMESTAMP"),
    ]
    assert types['"memory"."s"."v"'] == [("a", "BIGINT"), ("b", "VARCHAR")]
