"""Render the IR back to text: PQL strings (:func:`to_pql`) and SQL boolean expressions
(:func:`condition_sql`, the same rendering as the ``_rfm_condition_sql`` macro)."""

from __future__ import annotations

from collections.abc import Callable

from dbt_rfm.pql.conditions import NULLARY_OPS, Compare, Condition, Not, Scalar
from dbt_rfm.pql.ir import Aggregate, Cast
from dbt_rfm.pql.target import Target
from dbt_rfm.spec import GraphSpec


def literal(value: Scalar) -> str:
    """A SQL / PQL literal: numbers as is, booleans TRUE/FALSE, text single-quoted."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _cmp(lhs: str, op: str, value: Scalar | tuple[Scalar, ...]) -> str:
    if op in NULLARY_OPS:
        return f"{lhs} {op}"
    if isinstance(value, tuple):
        return f"{lhs} {op} ({', '.join(literal(v) for v in value)})"
    return f"{lhs} {op} {literal(value)}"


def _cond(cond: Condition, col: Callable[[str], str]) -> str:
    if isinstance(cond, Compare):
        return _cmp(col(cond.column), cond.op, cond.value)
    if isinstance(cond, Not):
        return f"NOT ({_cond(cond.item, col)})"
    return "(" + f" {cond.op} ".join(_cond(c, col) for c in cond.items) + ")"


def condition_sql(cond: Condition, alias: str = "") -> str:
    """SQL for a condition; columns double-quoted and prefixed with ``alias.`` when given."""
    prefix = f"{alias}." if alias else ""
    return _cond(cond, lambda c: f'{prefix}"{c}"')


def cast_sql(expr: str, cast: Cast) -> str:
    """SQL for ``expr op value``."""
    return _cmp(expr, cast.op, cast.value)


def _agg(agg: Aggregate) -> str:
    where = "" if agg.where is None else " WHERE " + _cond(agg.where, lambda c: f"{agg.table}.{c}")
    start = "-INF" if agg.start is None else str(agg.start)
    return f"{agg.fn}({agg.table}.{agg.column}{where}, {start}, {agg.end}, {agg.unit})"


def to_pql(target: Target, graph: GraphSpec) -> str:
    """The PQL string of a target (``parse(to_pql(t), graph)`` gives ``t`` back, bar anchors)."""
    if target.aggregate is not None:
        head = _agg(target.aggregate)
    else:
        head = f"{target.entity}.{target.static}"
    if target.cast is not None:
        head = _cmp(head, target.cast.op, target.cast.value)
    if target.top_k is not None:
        head += f" RANK TOP {target.top_k}"
    pk = graph.table(target.entity).primary_key[0]
    text = f"PREDICT {head} FOR EACH {target.entity}.{pk}"
    ef = target.entity_filter
    if ef is not None:
        parts = []
        if ef.aggregate is not None:
            agg = _agg(ef.aggregate)
            parts.append(agg if ef.cast is None else _cmp(agg, ef.cast.op, ef.cast.value))
        if ef.where is not None:
            parts.append(_cond(ef.where, lambda c: f"{target.entity}.{c}"))
        text += " WHERE " + " AND ".join(parts)
    return text
