"""Warehouse data types -> type families -> semantic types (stypes).

The same rules live in Jinja in ``macros/graph/_rfm_type_family.sql`` and
``macros/graph/_rfm_infer_stype.sql``; ``tests/test_graph_macro.py`` checks that the Python
reader and the warehouse table agree, so change both together.

A *type family* groups data types that compare equal as keys (every integer width is
``integer``; ``varchar(20)`` and ``text`` are ``text``). Link columns must have the same family
as the key they point to; a time column must be ``date`` or ``timestamp``.
"""

from __future__ import annotations

import re

_INTEGER = {
    "tinyint", "smallint", "integer", "int", "bigint", "hugeint", "utinyint", "usmallint",
    "uinteger", "ubigint", "uhugeint", "int1", "int2", "int4", "int8", "int16", "int32",
    "int64", "int128", "long", "short", "signed", "byteint",
}  # fmt: skip
_FLOAT = {"float", "double", "real", "float4", "float8", "double precision", "float64"}
_DECIMAL = {"decimal", "numeric", "number", "bignumeric"}
_TEXT = {
    "varchar", "char", "text", "string", "bpchar", "character", "character varying",
    "nvarchar", "nchar",
}  # fmt: skip
_BOOLEAN = {"boolean", "bool"}

#: Families a time column may have.
TIME_FAMILIES = ("date", "timestamp")

#: stype inferred from each family; families absent here need a ``meta.rfm.stypes`` override.
FAMILY_STYPES = {
    "integer": "numerical",
    "float": "numerical",
    "decimal": "numerical",
    "boolean": "boolean",
    "date": "timestamp",
    "timestamp": "timestamp",
    "text": "categorical",
}


def normalize_data_type(data_type: str) -> str:
    """Lower case, trimmed: the form stored in :class:`dbt_rfm.spec.ColumnSpec`."""
    return data_type.strip().lower()


def type_family(data_type: str) -> str:
    """Family of a warehouse data type.

    Args:
        data_type: as the warehouse reports it, e.g. ``BIGINT``, ``DECIMAL(18,0)``,
            ``TIMESTAMP WITH TIME ZONE``, ``VARCHAR``.

    Returns:
        ``integer``, ``float``, ``decimal``, ``text``, ``boolean``, ``date``, ``timestamp``,
        ``list`` (arrays), or for anything else the bare type name (``uuid``, ``struct``).
        Decimals with scale 0 are ``integer`` (Snowflake's ``NUMBER(38,0)``).
    """
    t = normalize_data_type(data_type)
    if t.endswith("]"):
        return "list"
    base = t.split("(")[0].strip()
    params = re.findall(r"\d+", t[len(base) :])
    if base in _INTEGER:
        return "integer"
    if base in _DECIMAL:
        scale_zero = len(params) == 2 and int(params[1]) == 0
        bare_number = base == "number" and not params
        return "integer" if scale_zero or bare_number else "decimal"
    if base in _FLOAT:
        return "float"
    if base in _TEXT:
        return "text"
    if base in _BOOLEAN:
        return "boolean"
    if base == "date":
        return "date"
    if base.startswith("timestamp") or base.startswith("datetime"):
        return "timestamp"
    return base.split(" ")[0]


def infer_stype(data_type: str) -> str | None:
    """stype of a non-key column from its data type, or None when there is no rule."""
    return FAMILY_STYPES.get(type_family(data_type))
