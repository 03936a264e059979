"""Property: random valid targets survive PQL text and YAML dict round trips unchanged."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pql_graph import demo_graph

from dbt_rfm.pql import (
    UNITS,
    Aggregate,
    BoolOp,
    Cast,
    Compare,
    EntityFilter,
    Not,
    Target,
    parse,
    to_pql,
    validate,
)
from dbt_rfm.pql.target import infer_task

G = demo_graph()
NUMERIC = ["dep_delay", "distance"]
TEXT = ["dest", "origin", "carrier"]
numbers = st.one_of(
    st.integers(-10_000, 10_000),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8)


def compares(columns: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Compare]:
    column = st.sampled_from(columns)
    return st.one_of(
        st.builds(Compare, column, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), values),
        st.builds(
            Compare,
            column,
            st.sampled_from(["IN", "NOT IN"]),
            st.lists(values, min_size=1, max_size=3).map(tuple),
        ),
        st.builds(Compare, column, st.sampled_from(["IS NULL", "IS NOT NULL"]), st.none()),
    )


def conditions(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(
                BoolOp,
                st.sampled_from(["AND", "OR"]),
                st.lists(inner, min_size=2, max_size=3).map(tuple),
            ),
            st.builds(Not, inner),
        ),
        max_leaves=4,
    )


flight_rows = conditions(
    st.one_of(
        compares(NUMERIC, numbers),
        compares(TEXT, texts),
        st.builds(Compare, st.just("cancelled"), st.just("="), st.booleans()),
        st.builds(Compare, st.sampled_from(TEXT), st.sampled_from(["LIKE", "NOT LIKE"]), texts),
    )
)


@st.composite
def targets(draw: st.DrawFn) -> Target:
    fn = draw(
        st.sampled_from(
            [
                "COUNT",
                "EXISTS",
                "SUM",
                "AVG",
                "MIN",
                "MAX",
                "COUNT_DISTINCT",
                "FIRST",
                "LAST",
                "LIST_DISTINCT",
            ]
        )
    )
    column = {"COUNT": ["*"], "EXISTS": ["*"], "LIST_DISTINCT": TEXT}.get(
        fn, NUMERIC if fn in ("SUM", "AVG", "MIN", "MAX") else NUMERIC + TEXT
    )
    start = draw(st.integers(0, 10))
    agg = Aggregate(
        fn,
        "flights",
        draw(st.sampled_from(column)),
        start,
        start + draw(st.integers(1, 30)),
        draw(st.sampled_from(UNITS)),
        draw(st.none() | flight_rows),
    )
    cast = None
    if fn != "LIST_DISTINCT" and draw(st.booleans()):
        cast = Cast(draw(st.sampled_from(["=", "!=", "<", ">="])), draw(numbers))
    task = infer_task(agg, cast) or ("multiclass" if agg.column in TEXT else "regression")
    ef = None
    if draw(st.booleans()):
        back = draw(st.none() | st.integers(1, 60))
        lookback = Aggregate("COUNT", "flights", "*", None if back is None else -back, 0, "days")
        keep = draw(st.booleans())
        where = draw(st.none() | conditions(compares(["seats", "year_built"], numbers)))
        if keep or where is not None:
            cast_ef = Cast(">", draw(st.integers(0, 5))) if keep else None
            ef = EntityFilter(lookback if keep else None, cast_ef, where)
    return Target(
        name="t",
        entity="planes",
        kind="aggregate",
        task=task,
        aggregate=agg,
        cast=cast,
        entity_filter=ef,
        top_k=draw(st.integers(1, 20)) if task == "ranking" else None,
    )


@settings(max_examples=150, deadline=None)
@given(targets())
def test_pql_and_yaml_round_trips(target: Target) -> None:
    validate(target, G)
    assert parse(to_pql(target, G), G, name="t") == target
    assert Target.from_dict(yaml.safe_load(yaml.safe_dump(target.to_dict()))) == target
