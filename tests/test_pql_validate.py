"""Validation errors: each names the target and the model / column at fault."""

from __future__ import annotations

from datetime import datetime

import pytest
from pql_graph import demo_graph

from dbt_rfm.errors import RfmError
from dbt_rfm.pql import Target, parse, validate
from dbt_rfm.pql.ir import Cast

G = demo_graph()


@pytest.mark.parametrize(
    ("query", "fragments"),
    [
        # unknown table / column, with a suggestion
        (
            "PREDICT COUNT(flightz.*, 0, 7) FOR EACH planes.tailnum",
            ["target 'q'", "no model 'flightz'", "did you mean 'flights'"],
        ),
        (
            "PREDICT SUM(flights.distanse, 0, 7) FOR EACH planes.tailnum",
            ["target 'q'", "model 'flights'", "no column 'distanse'", "did you mean 'distance'"],
        ),
        (
            "PREDICT COUNT(flights.* WHERE flights.dep_dely > 1, 0, 7) FOR EACH planes.tailnum",
            ["target 'q'", "'dep_dely'", "did you mean 'dep_delay'"],
        ),
        (
            "PREDICT COUNT(flights.*, 0, 7) FOR EACH planez.tailnum",
            ["target 'q'", "no model 'planez'", "did you mean 'planes'"],
        ),
        # aggregate over a non-numeric column
        (
            "PREDICT SUM(flights.dest, 0, 7) FOR EACH planes.tailnum",
            [
                "target 'q'",
                "model 'flights'",
                "column 'dest'",
                "SUM needs a numeric column",
                "varchar",
            ],
        ),
        (
            "PREDICT AVG(flights.dest, 0, 7) FOR EACH planes.tailnum",
            ["column 'dest'", "AVG needs a numeric column"],
        ),
        ("PREDICT SUM(flights.*, 0, 7) FOR EACH planes.tailnum", ["SUM(*)", "only COUNT"]),
        # window end <= start
        (
            "PREDICT COUNT(flights.*, 7, 7) FOR EACH planes.tailnum",
            ["target 'q'", "model 'flights'", "window end (7) must be after window start (7)"],
        ),
        ("PREDICT COUNT(flights.*, -7, 0) FOR EACH planes.tailnum", ["start must be >= 0"]),
        (
            "PREDICT COUNT(flights.*, 0, 7) FOR EACH planes.tailnum "
            "WHERE COUNT(flights.*, 0, 7) > 0",
            ["entity filter looks back", "end must be <= 0"],
        ),
        # no path to a time column / to the entity
        (
            "PREDICT COUNT(flights.*, 0, 7) FOR EACH airports.faa",
            ["target 'q'", "links to 'airports' in several ways", "aggregate.link"],
        ),
        (
            "PREDICT COUNT(weather.*, 0, 7) FOR EACH planes.tailnum",
            ["target 'q'", "model 'weather' has no link to the entity 'planes'"],
        ),
        # LIST_DISTINCT over a column that is not a link
        (
            "PREDICT LIST_DISTINCT(flights.distance, 0, 7) FOR EACH planes.tailnum",
            [
                "target 'q'",
                "column 'distance'",
                "LIST_DISTINCT needs a link column",
                "flights.dest->airports",
            ],
        ),
        (
            "PREDICT planes.manufacturer > 3 FOR EACH planes.tailnum WHERE "
            "COUNT(flights.*, -7, 0) > 0",
            ["static targets", "not an aggregate"],
        ),
        (
            "PREDICT planes.tailnum FOR EACH planes.tailnum WHERE planes.sets > 1",
            ["'sets'", "did you mean 'seats'"],
        ),
    ],
)
def test_errors_name_target_and_column(query: str, fragments: list[str]) -> None:
    with pytest.raises(RfmError) as err:
        parse(query, G, name="q")
    for fragment in fragments:
        assert fragment in str(err.value)


def _target(**overrides: object) -> Target:
    raw: dict = {"name": "t", "aggregate": {"fn": "count", "table": "flights", "end": 7}}
    raw.update(overrides)
    return Target.from_dict(raw, entity="planes")


def test_temporal_target_needs_a_time_column() -> None:
    graph = demo_graph()
    flights = graph.table("flights")
    no_time = type(graph)(
        tables=tuple(
            t
            if t.name != "flights"
            else type(flights)(
                flights.name, flights.relation, flights.primary_key, None, flights.columns
            )
            for t in graph.tables
        ),
        links=graph.links,
    )
    validate(_target(), graph)
    with pytest.raises(
        RfmError, match="target 't', model 'flights': a temporal target needs a time column"
    ):
        validate(_target(), no_time)


def test_empty_anchor_spine() -> None:
    bad = _target(anchors={"spine": {"start": "2013-03-01", "end": "2013-02-01", "step": 7}})
    with pytest.raises(RfmError, match="target 't': empty anchor spine: end 2013-02-01 is before"):
        validate(bad, G)
    late = _target(anchors={"spine": {"start": "2013-12-30"}})
    validate(late, G)  # fine without knowing the scoring time
    with pytest.raises(RfmError, match="empty anchor spine: the first anchor 2013-12-30 plus"):
        validate(late, G, scoring_time=datetime(2014, 1, 1, 4, 59))
    validate(late, G, scoring_time=datetime(2014, 1, 7))
    with pytest.raises(RfmError, match="anchors.spine.step must be positive"):
        validate(_target(anchors={"spine": {"step": 0}}), G)
    with pytest.raises(RfmError, match="'Feb 1st' is not a timestamp"):
        validate(_target(anchors={"spine": {"start": "Feb 1st"}}), G)


def test_boolean_static_column_is_its_own_label() -> None:
    for raw in (
        {"name": "t", "static": "cancelled"},
        {"name": "t", "static": "cancelled", "task": "binary"},
    ):
        target = Target.from_dict(raw, entity="flights", graph=G)
        assert (target.task, target.cast) == ("binary", Cast("=", True))
        validate(target, G)
    assert parse(
        "PREDICT flights.cancelled FOR EACH flights.flight_id", G, name="t"
    ) == Target.from_dict({"name": "t", "static": "cancelled"}, entity="flights", graph=G)
    # an explicit cast or task wins; a non-boolean column still needs a cast
    negated = {"name": "t", "static": "cancelled", "cast": {"op": "=", "value": False}}
    assert Target.from_dict(negated, entity="flights", graph=G).cast == Cast("=", False)
    multi = {"name": "t", "static": "cancelled", "task": "multiclass"}
    assert Target.from_dict(multi, entity="flights", graph=G).cast is None
    with pytest.raises(RfmError, match="cannot infer the task"):
        Target.from_dict({"name": "t", "static": "dep_delay"}, entity="flights", graph=G)
    with pytest.raises(RfmError, match="cannot infer the task"):  # no graph: no stype
        Target.from_dict({"name": "t", "static": "cancelled"}, entity="flights")


def test_task_and_type_checks() -> None:
    with pytest.raises(RfmError, match="'cancelled': a binary static target needs a cast"):
        validate(
            Target.from_dict(
                {"name": "t", "static": "cancelled", "task": "binary"}, entity="flights"
            ),
            G,
        )
    with pytest.raises(RfmError, match="column 'dep_delay': multiclass needs a categorical"):
        validate(
            Target.from_dict(
                {"name": "t", "static": "dep_delay", "task": "multiclass"}, entity="flights"
            ),
            G,
        )
    with pytest.raises(RfmError, match="column 'dest': regression needs a numeric column"):
        validate(
            Target.from_dict(
                {"name": "t", "static": "dest", "task": "regression"}, entity="flights"
            ),
            G,
        )
    with pytest.raises(RfmError, match="a target name must be an identifier"):
        validate(_target(name="plane delay"), G)
    with pytest.raises(RfmError, match="top_k must be a positive number, for ranking only"):
        validate(_target(top_k=3), G)
