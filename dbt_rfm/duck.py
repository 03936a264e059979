"""The one place that knows DuckDB's Python API (2.0 renamed and removed fetch methods).

Every result is read completely (or through a reader the caller drains) before the next query
on the same connection: DuckDB 2.0 blocks a connection that has an unread result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa


def arrow_table(con: Any, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
    """Run ``sql`` and return the whole result as an Arrow table."""
    return con.sql(sql, params=list(params or [])).to_arrow_table()


def arrow_reader(
    con: Any, sql: str, params: Sequence[Any] | None = None, batch_rows: int = 65_536
) -> pa.RecordBatchReader:
    """Run ``sql`` and stream the result in record batches of at most ``batch_rows`` rows."""
    return con.sql(sql, params=list(params or [])).to_arrow_reader(batch_rows)


def rows(con: Any, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run ``sql`` and return all rows as tuples (for small results)."""
    return con.execute(sql, list(params or [])).fetchall()


def scalar(con: Any, sql: str, params: Sequence[Any] | None = None) -> Any:
    """Run ``sql`` and return the first column of its first row."""
    return rows(con, sql, params)[0][0]
