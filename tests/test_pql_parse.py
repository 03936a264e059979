"""PQL string parser: every form of PQL.md, round trips, YAML equivalence, error positions."""

from __future__ import annotations

import pytest
import yaml
from pql_graph import demo_graph

from dbt_rfm.errors import RfmError
from dbt_rfm.pql import (
    Aggregate,
    Anchors,
    BoolOp,
    Cast,
    Compare,
    EntityFilter,
    Not,
    Spine,
    Target,
    parse,
    to_pql,
)

G = demo_graph()

QUERIES = [
    "PREDICT COUNT(flights.*, 0, 30, days) FOR EACH planes.tailnum",
    "PREDICT COUNT(flights.*, 0, 30) > 0 FOR EACH planes.tailnum",
    "PREDICT SUM(flights.distance, 0, 2, weeks) FOR EACH planes.tailnum",
    "PREDICT AVG(flights.dep_delay, 0, 12, hours) >= 10.5 FOR EACH airlines.carrier",
    "PREDICT MIN(flights.dep_delay, 0, 90, minutes) FOR EACH planes.tailnum",
    "PREDICT MAX(flights.dep_delay, 0, 3600, seconds) FOR EACH planes.tailnum",
    "PREDICT EXISTS(flights.* WHERE flights.cancelled = TRUE, 0, 1, months) "
    "FOR EACH planes.tailnum",
    "PREDICT COUNT_DISTINCT(flights.dest, 0, 7) FOR EACH planes.tailnum",
    "PREDICT FIRST(flights.dest, 0, 7) FOR EACH planes.tailnum",
    "PREDICT LAST(flights.dep_delay, 0, 7) FOR EACH planes.tailnum",
    "PREDICT LIST_DISTINCT(flights.dest, 0, 7, days) RANK TOP 5 FOR EACH planes.tailnum",
    "PREDICT COUNT(flights.* WHERE flights.dep_delay > 15 OR flights.cancelled = TRUE, 0, 7) > 0 "
    "FOR EACH planes.tailnum WHERE COUNT(flights.*, -30, 0, days) > 0",
    "PREDICT COUNT(flights.* WHERE NOT (flights.origin IN ('JFK', 'LGA') AND "
    "flights.dest != 'ATL'), 0, 7) = 0 FOR EACH planes.tailnum",
    "PREDICT COUNT(flights.* WHERE flights.dep_delay IS NOT NULL AND flights.dest LIKE 'A%', "
    "0, 7) FOR EACH planes.tailnum WHERE COUNT(flights.*, -INF, 0) > 10 AND planes.seats >= 100",
    "PREDICT flights.dep_delay > 15 FOR EACH flights.flight_id",
    "PREDICT flights.dep_delay FOR EACH flights.flight_id",
    "PREDICT planes.manufacturer FOR EACH planes.tailnum WHERE planes.year_built IS NOT NULL",
    "PREDICT planes.plane_type NOT IN ('Fixed wing single engine') FOR EACH planes.tailnum",
]


@pytest.mark.parametrize("query", QUERIES)
def test_round_trips(query: str) -> None:
    target = parse(query, G, name="t")
    assert parse(to_pql(target, G), G, name="t") == target
    assert Target.from_dict(target.to_dict()) == target
    # the YAML text form too (what a user pastes under meta.rfm.targets)
    raw = yaml.safe_load(yaml.safe_dump(target.to_dict()))
    assert Target.from_dict(raw, entity=target.entity) == target


def test_yaml_and_pql_give_the_same_ir() -> None:
    pql = parse(
        "PREDICT EXISTS(flights.* WHERE flights.dep_delay > 15 OR flights.cancelled = TRUE, 0, 7)"
        " FOR EACH planes.tailnum WHERE COUNT(flights.*, -30, 0, days) > 0",
        G,
        name="plane_delay_7d",
        anchors=Anchors(spine=Spine(start="2013-02-01", step=7)),
    )
    raw = yaml.safe_load(
        """
        name: plane_delay_7d
        aggregate:
          fn: exists
          table: flights
          where: {any: [{column: dep_delay, op: ">", value: 15},
                        {column: cancelled, op: "=", value: true}]}
          end: 7
        entity_filter:
          aggregate: {fn: COUNT, table: flights, column: "*", start: -30, end: 0}
          cast: {op: ">", value: 0}
        anchors: {spine: {start: "2013-02-01", step: 7}}
        """
    )
    assert Target.from_dict(raw, entity="planes") == pql
    assert pql.task == "binary" and pql.kind == "aggregate"
    assert pql.entity_filter == EntityFilter(
        Aggregate("COUNT", "flights", "*", -30, 0, "days"), Cast(">", 0), None
    )


def test_structure_of_conditions_and_defaults() -> None:
    t = parse(
        "predict count(flights.* where not flights.dest = 'ATL' and flights.distance < 500, "
        "0, 7) for each planes.tailnum",
        G,
    )
    assert t.aggregate is not None
    assert t.aggregate.where == BoolOp(
        "AND", (Not(Compare("dest", "=", "ATL")), Compare("distance", "<", 500))
    )
    assert t.task == "regression" and t.aggregate.unit == "days" and t.top_k is None
    assert parse("PREDICT LIST_DISTINCT(flights.dest, 0, 7) FOR EACH planes.tailnum", G).top_k == 10


def test_task_inference_uses_the_column_stype() -> None:
    assert parse("PREDICT FIRST(flights.dest, 0, 7) FOR EACH planes.tailnum", G).task == (
        "multiclass"
    )
    assert parse("PREDICT LAST(flights.dep_delay, 0, 7) FOR EACH planes.tailnum", G).task == (
        "regression"
    )
    assert parse("PREDICT planes.seats FOR EACH planes.tailnum", G).task == "regression"


@pytest.mark.parametrize(
    ("query", "caret_at", "expected"),
    [
        ("PREDICT COUNT(flights.*, 0, 7 FOR EACH planes.tailnum", "FOR", "expected )"),
        ("PREDICT COUNT(flights.*, 0, 7) FOR planes.tailnum", "planes", "expected EACH"),
        (
            "PREDICT COUNT(flights.*, 0, 7, fortnights) FOR EACH planes.tailnum",
            "fortnights",
            "time unit",
        ),
        (
            "PREDICT COUNT(flights.* WHERE flights.dep_delay 15, 0, 7) FOR EACH planes.tailnum",
            "15",
            "expected a comparison",
        ),
        (
            "PREDICT COUNT(flights.* WHERE planes.seats > 1, 0, 7) FOR EACH planes.tailnum",
            "planes",
            "column of 'flights'",
        ),
        (
            "PREDICT COUNT(flights.*, 0, 7) FOR EACH planes.tailnum extra",
            "extra",
            "end of the query",
        ),
        (
            "PREDICT COUNT(flights.*, 0, 7) FOR EACH planes.tailnum WHERE planes.seats > 1 OR "
            "COUNT(flights.*, -7, 0) > 0",
            "COUNT(flights.*, -7",
            "top level",
        ),
        (
            "PREDICT COUNT(flights.*, 0, 7) RANK TOP 3 FOR EACH planes.tailnum",
            "RANK",
            "LIST_DISTINCT",
        ),
        ("PREDICT COUNT(flights.*, 0, 7) FOR EACH planes.seats", "seats", "primary key"),
        (
            "PREDICT COUNT(flights.*, 0, 7) FOR EACH planes.tailnum WHERE planes.seats # 3",
            "#",
            "unexpected character",
        ),
    ],
)
def test_syntax_errors_point_at_the_token(query: str, caret_at: str, expected: str) -> None:
    with pytest.raises(RfmError) as err:
        parse(query, G)
    message = str(err.value)
    assert expected in message
    lines = message.splitlines()
    line, caret = lines[-2], lines[-1]
    assert line.strip() == query
    assert caret.index("^") - line.index("PREDICT") == query.index(caret_at)
