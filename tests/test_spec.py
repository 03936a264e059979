"""GraphSpec round trips: JSON and the warehouse row layout."""

import pytest

from dbt_rfm.errors import RfmError
from dbt_rfm.spec import SPEC_ROW_COLUMNS, ColumnSpec, GraphSpec, LinkSpec, TableSpec


def _spec() -> GraphSpec:
    flights = TableSpec(
        name="flights",
        relation='"db"."main"."flights"',
        primary_key=("flight_id",),
        time_column="scheduled_departure",
        columns=(
            ColumnSpec("flight_id", "bigint", "key"),
            ColumnSpec("scheduled_departure", "timestamp", "timestamp"),
            ColumnSpec("origin", "varchar", "key"),
            ColumnSpec("dest", "varchar", "key"),
            ColumnSpec("time_hour", "timestamp", "key"),
            ColumnSpec("dep_delay", "double", "numerical"),
        ),
    )
    airports = TableSpec(
        name="airports",
        relation='"db"."main"."airports"',
        primary_key=("faa",),
        time_column=None,
        columns=(ColumnSpec("faa", "varchar", "key"), ColumnSpec("alt", "bigint", "numerical")),
    )
    weather = TableSpec(
        name="weather",
        relation='"db"."main"."weather"',
        primary_key=("origin", "time_hour"),
        time_column="time_hour",
        columns=(
            ColumnSpec("origin", "varchar", "key"),
            ColumnSpec("time_hour", "timestamp", "key"),
        ),
    )
    return GraphSpec(
        tables=(flights, airports, weather),
        links=(
            LinkSpec("flights", ("origin",), "airports", ("faa",)),
            LinkSpec("flights", ("dest",), "airports", ("faa",)),
            LinkSpec("flights", ("origin", "time_hour"), "weather", ("origin", "time_hour")),
            LinkSpec("weather", ("origin",), "airports", ("faa",)),
        ),
    )


def test_json_round_trip() -> None:
    spec = _spec()
    assert GraphSpec.from_json(spec.to_json()) == spec


def test_rows_round_trip_with_shared_columns_and_composite_links() -> None:
    spec = _spec()
    rows = spec.to_rows()
    assert all(tuple(r) == SPEC_ROW_COLUMNS for r in rows)
    # origin is in two links (airports, weather): one row per link membership.
    origin_rows = [r for r in rows if r["table_name"] == "flights" and r["column_name"] == "origin"]
    assert len(origin_rows) == 2
    assert GraphSpec.from_rows(reversed(rows)) == spec


def test_lookup_errors_suggest() -> None:
    spec = _spec()
    with pytest.raises(RfmError, match="did you mean 'flights'"):
        spec.table("flight")
    with pytest.raises(RfmError, match="did you mean 'dep_delay'"):
        spec.table("flights").column("dep_dealy")
    assert [lk.name for lk in spec.links_to("airports")] == [
        "flights.dest->airports",
        "flights.origin->airports",
        "weather.origin->airports",
    ]
