"""Row conditions: comparisons on one table's columns, combined with AND / OR / NOT.

Used for filters inside an aggregation (``COUNT(flights.* WHERE flights.dep_delay > 15, ...)``),
for static entity filters and, as :class:`Cast`, to turn a target into a binary one.

YAML (structured) form, lifted by :func:`condition_from_dict`::

    {column: dep_delay, op: ">", value: 15}          # a comparison
    [cond, cond, ...]                                # all of them (AND)
    {all: [cond, ...]} / {any: [cond, ...]}          # AND / OR
    {not: cond}                                      # NOT
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from dbt_rfm.errors import RfmError, did_you_mean

#: A literal in a condition. Timestamps are written as ISO strings.
Scalar = Union[int, float, str, bool, None]  # noqa: UP007 (runtime alias)

#: Comparison operators, canonical spelling.
OPS = (
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "IN",
    "NOT IN",
    "IS NULL",
    "IS NOT NULL",
    "LIKE",
    "NOT LIKE",
)
_OP_ALIASES = {
    "==": "=",
    "<>": "!=",
    "EQ": "=",
    "NE": "!=",
    "LT": "<",
    "LE": "<=",
    "GT": ">",
    "GE": ">=",
}
#: Operators that take no value / a list of values.
NULLARY_OPS = ("IS NULL", "IS NOT NULL")
LIST_OPS = ("IN", "NOT IN")


def normalize_op(op: object, where: str) -> str:
    """Return the canonical spelling of a comparison operator (``is_null`` -> ``IS NULL``).

    Raises:
        RfmError: unknown operator, naming ``where`` and suggesting the closest one.
    """
    text = " ".join(str(op).replace("_", " ").upper().split())
    text = _OP_ALIASES.get(text, text)
    if text not in OPS:
        raise RfmError(
            f"{where}: unknown operator '{op}'{did_you_mean(text, OPS)}; "
            f"expected one of {', '.join(OPS)}"
        )
    return text


@dataclass(frozen=True)
class Compare:
    """``column op value``; ``value`` is a tuple for IN / NOT IN and None for IS [NOT] NULL."""

    column: str
    op: str
    value: Scalar | tuple[Scalar, ...] = None


@dataclass(frozen=True)
class BoolOp:
    """``items[0] AND items[1] ...`` (``op == "AND"``) or the same with OR."""

    op: str
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """``NOT item``."""

    item: Condition


Condition = Union[Compare, BoolOp, Not]  # noqa: UP007 (runtime alias)


def make_compare(column: str, op: object, value: object, where: str) -> Compare:
    """Build a :class:`Compare`, normalising the operator and checking the value's shape."""
    canon = normalize_op(op, where)
    if canon in NULLARY_OPS:
        if value is not None:
            raise RfmError(f"{where}: '{canon}' takes no value, found {value!r}")
        return Compare(column, canon, None)
    if canon in LIST_OPS:
        if isinstance(value, str) or not isinstance(value, Sequence) or not value:
            raise RfmError(f"{where}: '{canon}' needs a non-empty list of values, found {value!r}")
        return Compare(column, canon, tuple(_scalar(v, where) for v in value))
    return Compare(column, canon, _scalar(value, where))


def _scalar(value: object, where: str) -> Scalar:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    # YAML dates/datetimes: keep them as ISO text, which compares against timestamps in SQL.
    if hasattr(value, "isoformat"):
        return str(value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat())
    raise RfmError(f"{where}: expected a number, text, boolean or list, found {value!r}")


def condition_from_dict(raw: object, where: str) -> Condition:
    """Lift the YAML form of a condition (see module docstring).

    Raises:
        RfmError: unknown keys (with a suggestion), bad operators or values.
    """
    if isinstance(raw, list | tuple):
        items = tuple(condition_from_dict(r, where) for r in raw)
        if not items:
            raise RfmError(f"{where}: empty condition list")
        return items[0] if len(items) == 1 else BoolOp("AND", items)
    if not isinstance(raw, Mapping):
        raise RfmError(f"{where}: expected a condition mapping or list, found {raw!r}")
    keys = set(raw)
    for logical, op in (("all", "AND"), ("any", "OR")):
        if keys == {logical}:
            inner = raw[logical]
            if not isinstance(inner, list | tuple) or not inner:
                raise RfmError(f"{where}: '{logical}' needs a non-empty list of conditions")
            items = tuple(condition_from_dict(r, where) for r in inner)
            return items[0] if len(items) == 1 else BoolOp(op, items)
    if keys == {"not"}:
        return Not(condition_from_dict(raw["not"], where))
    check_keys(raw, ("column", "op", "value"), where, required=("column", "op"))
    return make_compare(str(raw["column"]), raw["op"], raw.get("value"), where)


def condition_to_dict(cond: Condition) -> Any:
    """Inverse of :func:`condition_from_dict` (AND -> ``{all: [...]}``)."""
    if isinstance(cond, Compare):
        out: dict[str, Any] = {"column": cond.column, "op": cond.op}
        if cond.op not in NULLARY_OPS:
            out["value"] = list(cond.value) if isinstance(cond.value, tuple) else cond.value
        return out
    if isinstance(cond, Not):
        return {"not": condition_to_dict(cond.item)}
    return {"all" if cond.op == "AND" else "any": [condition_to_dict(c) for c in cond.items]}


def condition_columns(cond: Condition) -> tuple[str, ...]:
    """Every column a condition reads, in order of appearance."""
    if isinstance(cond, Compare):
        return (cond.column,)
    if isinstance(cond, Not):
        return condition_columns(cond.item)
    return tuple(c for item in cond.items for c in condition_columns(item))


def check_keys(
    raw: Mapping[str, Any], allowed: Sequence[str], where: str, required: Sequence[str] = ()
) -> None:
    """Reject unknown keys (suggesting the closest allowed one) and missing required keys."""
    for key in raw:
        if key not in allowed:
            raise RfmError(
                f"{where}: unknown key '{key}'{did_you_mean(str(key), allowed)}; "
                f"allowed keys: {', '.join(allowed)}"
            )
    for key in required:
        if key not in raw or raw[key] is None:
            raise RfmError(f"{where}: missing required key '{key}'")
