"""Text rendering of keys and values, identical to SQL ``cast(x as varchar)`` on DuckDB.

Row keys are the primary key cast to text, composite keys joined with ``|``
(:data:`rfm_runtime.schema.KEY_SEPARATOR`). The SQL sampler joins on that text, so the
in-process sampler must render every key type exactly as the warehouse does:

* integers: decimal digits; booleans: ``true`` / ``false``; dates: ``YYYY-MM-DD``;
* timestamps: ``YYYY-MM-DD HH:MM:SS`` plus ``.ffffff`` with trailing zeros removed when the
  microseconds are not zero (DuckDB prints ``2013-01-01 05:00:00.5``);
* doubles: the shortest round-trip form (Python's ``repr``; DuckDB prints the same);
* decimals: digits with the declared scale (``123.40``); strings as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
from rfm_runtime.schema import KEY_SEPARATOR

from dbt_rfm.errors import RfmError

__all__ = ["key_text", "value_text", "timestamp_us"]


def value_text(values: pa.Array | pa.ChunkedArray, what: str = "column") -> pa.Array:
    """Render one column as text, as SQL ``cast(x as varchar)`` does on DuckDB.

    Args:
        values: any Arrow array of a supported type, length N.
        what: where the column comes from (``model 'x', column 'y'``), for error messages.

    Returns:
        ``string[N]``; nulls stay null.
    """
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return arr.cast(pa.string())
    if pa.types.is_integer(t) or pa.types.is_decimal(t) or pa.types.is_date32(t):
        return arr.cast(pa.string())
    if pa.types.is_boolean(t):
        return pc.if_else(arr, "true", "false")
    if pa.types.is_floating(t):
        return pa.array(
            [None if v is None else repr(float(v)) for v in arr.to_pylist()], pa.string()
        )
    if pa.types.is_timestamp(t):
        return _timestamp_text(arr)
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    raise RfmError(f"{what}: cannot render type {t} as a key or text value")


def key_text(table: pa.Table, columns: Sequence[str], what: str = "model") -> pa.Array:
    """Render a (possibly composite) key as text: ``concat_ws('|', cast(c as varchar), ...)``.

    A row with a null in any key column gets a null key (a foreign key that points nowhere).

    Args:
        table: Arrow table with N rows holding ``columns``.
        columns: the key columns, in key order.
        what: the dbt model name, for error messages.

    Returns:
        ``string[N]``.
    """
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise RfmError(
            f"model '{what}': key column(s) {missing} missing from the Arrow table; "
            f"columns: {', '.join(table.column_names)}"
        )
    parts = [value_text(table[c], f"model '{what}', column '{c}'") for c in columns]
    if len(parts) == 1:
        return parts[0]
    # binary_join_element_wise gives null when any part is null: exactly "no link".
    return pc.binary_join_element_wise(*parts, KEY_SEPARATOR)


def timestamp_us(values: pa.Array | pa.ChunkedArray, what: str = "column") -> pa.Array:
    """Convert a date or naive timestamp column to ``int64[N]`` microseconds since the epoch."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    t = arr.type
    if pa.types.is_date(t):
        arr = arr.cast(pa.timestamp("us"))
    elif pa.types.is_timestamp(t):
        if t.tz is not None:
            arr = arr.cast(pa.timestamp(t.unit))  # naive UTC, as every time in the graph
        arr = arr.cast(pa.timestamp("us"))
    else:
        raise RfmError(f"{what}: expected a date or timestamp, found {t}")
    return arr.cast(pa.int64())


def _timestamp_text(arr: pa.Array) -> pa.Array:
    us = timestamp_us(arr)
    sec = pc.divide(us, 1_000_000)  # integer division truncates toward zero
    frac = pc.subtract(us, pc.multiply(sec, 1_000_000))
    negative = pc.less(frac, 0)  # before 1970: floor, and a positive fraction
    sec = pc.if_else(negative, pc.subtract(sec, 1), sec)
    frac = pc.if_else(negative, pc.add(frac, 1_000_000), frac)
    base = pc.strftime(sec.cast(pa.timestamp("s")), format="%Y-%m-%d %H:%M:%S")
    digits = pc.utf8_rtrim(pc.utf8_lpad(frac.cast(pa.string()), 6, "0"), "0")
    with_frac = pc.binary_join_element_wise(base, digits, ".")
    return pc.if_else(pc.equal(frac, 0), base, with_frac)
