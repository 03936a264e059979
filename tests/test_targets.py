"""Targets from YAML: from_dict (unknown keys, defaults, consistency) and from a manifest."""

from __future__ import annotations

from typing import Any

import pytest
from pql_graph import demo_graph

from dbt_rfm.errors import RfmError
from dbt_rfm.pql import Target
from dbt_rfm.pql.conditions import BoolOp, Compare
from dbt_rfm.targets import find_target, raw_targets, targets_from_manifest

AGG = {"fn": "count", "table": "flights", "end": 30}


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        (
            {"name": "t", "aggregat": AGG},
            ["target 't' on model 'planes'", "unknown key 'aggregat'", "did you mean 'aggregate'"],
        ),
        ({"name": "t", "aggregate": {**AGG, "window_end": 3}}, ["unknown key 'window_end'"]),
        (
            {"name": "t", "aggregate": {**AGG, "fn": "cnt"}},
            ["unknown aggregate 'cnt'", "did you mean 'COUNT'"],
        ),
        (
            {"name": "t", "aggregate": {**AGG, "unit": "day"}},
            ["unknown time unit 'day'", "did you mean 'days'"],
        ),
        ({"name": "t", "aggregate": {**AGG, "end": 2.5}}, ["window end must be a whole number"]),
        (
            {"name": "t", "aggregate": AGG, "cast": {"op": "greater", "value": 1}},
            ["unknown operator 'greater'"],
        ),
        (
            {"name": "t", "aggregate": AGG, "cast": {"op": "in", "value": 3}},
            ["'IN' needs a non-empty list"],
        ),
        ({"name": "t"}, ["give exactly one of 'aggregate'"]),
        ({"name": "t", "aggregate": AGG, "static": "seats"}, ["give exactly one of"]),
        (
            {"name": "t", "aggregate": AGG, "task": "binary"},
            ["task 'binary' does not match the target, which is 'regression'"],
        ),
        ({"name": "t", "static": "seats"}, ["cannot infer the task"]),
        ({"name": "t", "aggregate": AGG, "kind": "static"}, ["kind 'static' does not match"]),
        (
            {"name": "t", "aggregate": AGG, "entity": "flights"},
            ["declared on model 'planes' but says entity 'flights'"],
        ),
        (
            {"name": "t", "aggregate": AGG, "anchors": {"spine": {"stop": 1}}},
            ["unknown key 'stop'", "did you mean 'step'"],
        ),
        (
            {"name": "t", "aggregate": AGG, "history": {"windows": [1]}},
            ["target 't' on model 'planes'", "history applies to static targets"],
        ),
        (
            {
                "name": "t",
                "static": "seats",
                "cast": {"op": ">", "value": 1},
                "history": {"windows": []},
            },
            ["history.windows must be a non-empty list"],
        ),
        (
            {
                "name": "t",
                "static": "seats",
                "cast": {"op": ">", "value": 1},
                "history": {"windows": [0, 3]},
            },
            ["history windows must be positive"],
        ),
        (
            {
                "name": "t",
                "static": "seats",
                "cast": {"op": ">", "value": 1},
                "history": {"window": [3]},
            },
            ["unknown key 'window'", "did you mean 'windows'"],
        ),
        (
            {
                "name": "t",
                "static": "seats",
                "cast": {"op": ">", "value": 1},
                "history": {"unit": "hour"},
            },
            ["unknown time unit 'hour'", "did you mean 'hours'"],
        ),
        (
            {"name": "t", "aggregate": {**AGG, "where": {"colum": "x", "op": "=", "value": 1}}},
            ["unknown key 'colum'", "did you mean 'column'"],
        ),
    ],
)
def test_from_dict_errors(raw: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(RfmError) as err:
        Target.from_dict(raw, entity="planes")
    for fragment in fragments:
        assert fragment in str(err.value)


def test_from_dict_defaults_and_condition_forms() -> None:
    t = Target.from_dict(
        {
            "name": "t",
            "aggregate": {
                **AGG,
                "where": [
                    {"column": "dep_delay", "op": "gt", "value": 15},
                    {"column": "dest", "op": "is_not_null"},
                ],
            },
        },
        entity="planes",
    )
    assert t.kind == "aggregate" and t.task == "regression"
    assert t.aggregate is not None
    assert (t.aggregate.column, t.aggregate.start, t.aggregate.unit) == ("*", 0, "days")
    assert t.aggregate.where == BoolOp(
        "AND", (Compare("dep_delay", ">", 15), Compare("dest", "IS NOT NULL", None))
    )
    ranking = Target.from_dict(
        {"name": "r", "aggregate": {**AGG, "fn": "list_distinct", "column": "dest"}},
        entity="planes",
    )
    assert (ranking.task, ranking.top_k) == ("ranking", 10)


def _manifest(*models: tuple[str, Any]) -> dict[str, Any]:
    nodes = {
        f"model.p.{name}": {
            "resource_type": "model",
            "name": name,
            "config": {"meta": {"rfm": {"targets": targets}}},
        }
        for name, targets in models
    }
    nodes["test.p.x"] = {"resource_type": "test", "name": "x", "config": {}}
    return {"nodes": nodes}


def test_targets_from_manifest() -> None:
    manifest = _manifest(
        ("planes", [{"name": "b", "aggregate": AGG}, {"name": "a", "aggregate": AGG}]),
        ("flights", [{"name": "c", "static": "dep_delay", "cast": {"op": ">", "value": 15}}]),
    )
    targets = targets_from_manifest(manifest, demo_graph())
    assert [(t.name, t.entity) for t in targets] == [
        ("a", "planes"),
        ("b", "planes"),
        ("c", "flights"),
    ]
    assert find_target(targets, "c").task == "binary"
    with pytest.raises(RfmError, match="no target 'aa' \\(did you mean 'a'\\?\\)"):
        find_target(targets, "aa")
    assert len(raw_targets(manifest)) == 3


def test_manifest_errors() -> None:
    with pytest.raises(RfmError, match="target 'a' is declared twice \\(models 'planes' and"):
        targets_from_manifest(
            _manifest(
                ("planes", [{"name": "a", "aggregate": AGG}]),
                ("flights", [{"name": "a", "static": "dep_delay", "task": "regression"}]),
            )
        )
    with pytest.raises(RfmError, match="model 'planes': meta.rfm.targets must be a list"):
        targets_from_manifest(_manifest(("planes", {"name": "a", "aggregate": AGG})))
    with pytest.raises(RfmError, match="target 'a', model 'flights', column 'dest': SUM needs"):
        targets_from_manifest(
            _manifest(
                ("planes", [{"name": "a", "aggregate": {**AGG, "fn": "sum", "column": "dest"}}])
            ),
            demo_graph(),
        )


def test_static_target_history_defaults_and_round_trip() -> None:
    raw = {"name": "t", "static": "seats", "cast": {"op": ">", "value": 1}}
    target = Target.from_dict(raw, "planes")
    assert target.history is not None and target.history.to_dict() == {
        "windows": [1, 7, 28],
        "unit": "days",
    }
    hours = Target.from_dict({**raw, "history": {"windows": [24, 3, 3], "unit": "HOURS"}}, "planes")
    assert hours.history is not None and hours.history.windows == (3, 24)
    assert hours.history.unit == "hours"
    assert Target.from_dict(hours.to_dict()) == hours
    assert Target.from_dict({"name": "a", "aggregate": AGG}, "planes").history is None
