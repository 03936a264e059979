"""The predictive-query IR: frozen dataclasses for targets, their aggregates, casts and anchors.

One IR, two front ends: the YAML form under ``config.meta.rfm.targets`` (lifted by
:meth:`Target.from_dict`) and the PQL string form (:func:`dbt_rfm.pql.parse`). Both produce
equal :class:`Target` values; :meth:`Target.to_dict` gives the YAML form back.

Windows are ``(start, end]`` relative to the anchor time, in ``unit`` (start exclusive, end
inclusive); ``start=None`` means ``-INF`` (all history, entity filters only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dbt_rfm.errors import RfmError, did_you_mean
from dbt_rfm.pql.conditions import (
    Condition,
    Scalar,
    check_keys,
    condition_from_dict,
    condition_to_dict,
    make_compare,
)

AGG_FNS = (
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "EXISTS",
    "COUNT_DISTINCT",
    "FIRST",
    "LAST",
    "LIST_DISTINCT",
)
#: Aggregates that give 0 (and keep the entity) when the window holds no rows.
ZERO_WHEN_EMPTY = ("COUNT", "SUM", "EXISTS", "COUNT_DISTINCT")
UNITS = ("seconds", "minutes", "hours", "days", "weeks", "months")
TASKS = ("binary", "regression", "multiclass", "ranking")
KINDS = ("aggregate", "static")


def _enum(value: object, choices: tuple[str, ...], where: str, what: str, upper: bool) -> str:
    text = str(value).upper() if upper else str(value).lower()
    if text not in choices:
        raise RfmError(
            f"{where}: unknown {what} '{value}'{did_you_mean(text, choices)}; "
            f"expected one of {', '.join(choices)}"
        )
    return text


def _int(value: object, where: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise RfmError(f"{where}: {what} must be a whole number, found {value!r}")
    return int(value)


def _time_text(value: object, where: str, what: str) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return str(value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat())
    if not isinstance(value, str):
        raise RfmError(
            f"{where}: {what} must be a timestamp text like '2013-02-01', found {value!r}"
        )
    return value


@dataclass(frozen=True)
class Aggregate:
    """``FN(table.column [WHERE where], start, end, unit)`` over rows of a linked table.

    Attributes:
        fn: one of :data:`AGG_FNS`.
        table: the aggregated dbt model: a child of the entity (it has a link to it) or a
            grandchild (a link to a model that links to the entity), see
            :func:`dbt_rfm.pql.paths.path_to_entity`.
        column: aggregated column, or ``"*"`` (COUNT / EXISTS only).
        start: window start (exclusive), or None for -INF.
        end: window end (inclusive).
        unit: one of :data:`UNITS`.
        where: row filter on ``table``'s columns, or None.
        link: the child columns of the table's first link on the path, when it has several.
        via: the middle model of a two-hop path (YAML only; PQL resolves a unique path).
    """

    fn: str
    table: str
    column: str
    start: int | None
    end: int
    unit: str = "days"
    where: Condition | None = None
    link: tuple[str, ...] | None = None
    via: str | None = None

    _KEYS = ("fn", "table", "column", "start", "end", "unit", "where", "link", "via")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> Aggregate:
        """Lift the YAML form; ``where`` names the target for messages."""
        if not isinstance(raw, Mapping):
            raise RfmError(f"{where}: expected a mapping, found {raw!r}")
        check_keys(raw, cls._KEYS, where, required=("fn", "table", "end"))
        fn = _enum(raw["fn"], AGG_FNS, where, "aggregate", upper=True)
        start = raw.get("start", 0)
        if isinstance(start, str) and start.strip().upper() in ("-INF", "-INFINITY"):
            start = None
        link = raw.get("link")
        return cls(
            fn=fn,
            table=str(raw["table"]),
            column=str(raw.get("column", "*")),
            start=None if start is None else _int(start, where, "window start"),
            end=_int(raw["end"], where, "window end"),
            unit=_enum(raw.get("unit", "days"), UNITS, where, "time unit", upper=False),
            where=None if raw.get("where") is None else condition_from_dict(raw["where"], where),
            link=None if link is None else tuple([link] if isinstance(link, str) else link),
            via=None if raw.get("via") is None else str(raw["via"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (inverse of :meth:`from_dict`)."""
        out: dict[str, Any] = {
            "fn": self.fn,
            "table": self.table,
            "column": self.column,
            "start": self.start,
            "end": self.end,
            "unit": self.unit,
        }
        if self.where is not None:
            out["where"] = condition_to_dict(self.where)
        if self.link is not None:
            out["link"] = list(self.link)
        if self.via is not None:
            out["via"] = self.via
        return out


@dataclass(frozen=True)
class Cast:
    """``op value`` applied to a target value, making it binary (1.0 when true, else 0.0)."""

    op: str
    value: Scalar | tuple[Scalar, ...] = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> Cast:
        """Lift ``{op: '>', value: 0}``."""
        if not isinstance(raw, Mapping):
            raise RfmError(f"{where}: cast must be a mapping like {{op: '>', value: 0}}")
        check_keys(raw, ("op", "value"), where, required=("op",))
        c = make_compare("_", raw["op"], raw.get("value"), where)
        return cls(c.op, c.value)

    def to_dict(self) -> dict[str, Any]:
        """The YAML form."""
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"op": self.op, "value": value}


@dataclass(frozen=True)
class EntityFilter:
    """Which entities are anchors at a time: a backward-looking aggregate cast and/or a static
    condition on the entity's own columns (both must hold when both are given)."""

    aggregate: Aggregate | None = None
    cast: Cast | None = None
    where: Condition | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> EntityFilter:
        """Lift ``{aggregate: {...}, cast: {...}, where: cond}``."""
        if not isinstance(raw, Mapping):
            raise RfmError(f"{where}: entity_filter must be a mapping")
        check_keys(raw, ("aggregate", "cast", "where"), where)
        agg = raw.get("aggregate")
        cast = raw.get("cast")
        return cls(
            aggregate=None if agg is None else Aggregate.from_dict(agg, where + " entity_filter"),
            cast=None if cast is None else Cast.from_dict(cast, where + " entity_filter"),
            where=None if raw.get("where") is None else condition_from_dict(raw["where"], where),
        )

    def to_dict(self) -> dict[str, Any]:
        """The YAML form."""
        out: dict[str, Any] = {}
        if self.aggregate is not None:
            out["aggregate"] = self.aggregate.to_dict()
        if self.cast is not None:
            out["cast"] = self.cast.to_dict()
        if self.where is not None:
            out["where"] = condition_to_dict(self.where)
        return out


@dataclass(frozen=True)
class Spine:
    """Context anchor times ``start, start + step, ...`` up to ``end`` (inclusive).

    ``start`` None: the earliest row time of the aggregated table plus the entity filter's
    lookback. ``end`` None: the latest time whose label window ends by the scoring time.
    """

    start: str | None = None
    end: str | None = None
    step: int | None = None
    unit: str = "days"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> Spine:
        """Lift ``{start: '2013-02-01', end: null, step: 7, unit: days}``."""
        if not isinstance(raw, Mapping):
            raise RfmError(f"{where}: anchors.spine must be a mapping")
        check_keys(raw, ("start", "end", "step", "unit"), where)
        step = raw.get("step")
        return cls(
            start=_time_text(raw.get("start"), where, "spine start"),
            end=_time_text(raw.get("end"), where, "spine end"),
            step=None if step is None else _int(step, where, "spine step"),
            unit=_enum(raw.get("unit", "days"), UNITS, where, "time unit", upper=False),
        )


@dataclass(frozen=True)
class Anchors:
    """How anchors are made. Aggregate targets use ``spine``; static targets use ``split``
    (context rows have time <= split - margin, query rows time > split; default split: the
    scoring time). ``max_context`` keeps at most that many context anchors, chosen by a stable
    hash of (entity_id, anchor_time)."""

    spine: Spine = Spine()
    split: str | None = None
    margin: int = 0
    margin_unit: str = "days"
    max_context: int | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, where: str) -> Anchors:
        """Lift ``{spine: {...}, split: ..., margin: 0, margin_unit: days}``."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise RfmError(f"{where}: anchors must be a mapping")
        check_keys(raw, ("spine", "split", "margin", "margin_unit", "max_context"), where)
        max_context = raw.get("max_context")
        spine = raw.get("spine")
        return cls(
            spine=Spine() if spine is None else Spine.from_dict(spine, where),
            split=_time_text(raw.get("split"), where, "split"),
            margin=_int(raw.get("margin", 0), where, "margin"),
            margin_unit=_enum(
                raw.get("margin_unit", "days"), UNITS, where, "time unit", upper=False
            ),
            max_context=None if max_context is None else _int(max_context, where, "max_context"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The YAML form."""
        return {
            "spine": {
                "start": self.spine.start,
                "end": self.spine.end,
                "step": self.spine.step,
                "unit": self.spine.unit,
            },
            "split": self.split,
            "margin": self.margin,
            "margin_unit": self.margin_unit,
            "max_context": self.max_context,
        }


@dataclass(frozen=True)
class History:
    """A static target's sibling history (``rfm_sibling_history``): the windows before the
    anchor, in ``unit``, over which the target's rate among the entity's siblings (the rows
    that share a parent) is counted. Only static targets take it (decision 0008)."""

    windows: tuple[int, ...] = (1, 7, 28)
    unit: str = "days"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, where: str) -> History:
        """Lift ``{windows: [1, 7, 28], unit: days}`` (either key may be left out)."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise RfmError(f"{where}: history must be a mapping")
        check_keys(raw, ("windows", "unit"), where)
        windows = raw.get("windows", list(cls.windows))
        if not isinstance(windows, list | tuple) or not windows:
            raise RfmError(f"{where}: history.windows must be a non-empty list, found {windows!r}")
        lengths = sorted({_int(w, where, "history window") for w in windows})
        if lengths[0] <= 0:
            raise RfmError(f"{where}: history windows must be positive, found {lengths[0]}")
        unit = _enum(raw.get("unit", cls.unit), UNITS, where, "time unit", upper=False)
        return cls(windows=tuple(lengths), unit=unit)

    def to_dict(self) -> dict[str, Any]:
        """The YAML form."""
        return {"windows": list(self.windows), "unit": self.unit}
