"""Validate a :class:`Target` against the graph: names exist, types fit, windows make sense.

Every error names the target and the dbt model / column at fault, and suggests the closest
name where one was misspelt.
"""

from __future__ import annotations

import re
from datetime import datetime

from dbt_rfm.errors import RfmError
from dbt_rfm.pql.conditions import Condition, condition_columns
from dbt_rfm.pql.ir import Aggregate
from dbt_rfm.pql.paths import path_to_entity
from dbt_rfm.pql.target import Target
from dbt_rfm.spec import GraphSpec, LinkSpec, TableSpec

_NUMERIC_TYPES = (
    "int",
    "integer",
    "bigint",
    "smallint",
    "tinyint",
    "hugeint",
    "double",
    "float",
    "real",
    "decimal",
    "numeric",
    "number",
    "ubigint",
    "uinteger",
)
_CATEGORICAL = ("categorical", "text", "boolean", "key")


def _table(graph: GraphSpec, name: str, target: str) -> TableSpec:
    try:
        return graph.table(name)
    except RfmError as exc:
        raise RfmError(f"target '{target}': {exc}") from None


def column_stype(graph: GraphSpec, table: str, column: str, target: str) -> str:
    """The stype of ``table.column``, raising an RfmError naming the target if it is unknown."""
    try:
        return _table(graph, table, target).column(column).stype
    except RfmError as exc:
        msg = str(exc)
        raise RfmError(msg if msg.startswith("target") else f"target '{target}': {msg}") from None


def _is_numeric(graph: GraphSpec, table: str, column: str, target: str) -> bool:
    col = _table(graph, table, target).column(column)
    return col.stype == "numerical" or col.data_type.split("(")[0].strip() in _NUMERIC_TYPES


def link_to_entity(graph: GraphSpec, agg: Aggregate, entity: str, target: str) -> LinkSpec:
    """The link from ``agg.table`` to the entity when it is a direct child.

    Raises:
        RfmError: no direct link (see :func:`dbt_rfm.pql.paths.path_to_entity` for two hops).
    """
    path = path_to_entity(graph, agg, entity, target)
    if len(path) != 1:
        raise RfmError(
            f"target '{target}': model '{agg.table}' is not a direct child of "
            f"'{entity}' (it links through '{path[0].parent}')"
        )
    return path[0]


def _check_condition(graph: GraphSpec, cond: Condition | None, table: str, target: str) -> None:
    if cond is None:
        return
    for column in condition_columns(cond):
        column_stype(graph, table, column, target)


def _check_aggregate(
    graph: GraphSpec, agg: Aggregate, entity: str, target: str, future: bool
) -> None:
    t = _table(graph, agg.table, target)
    where = f"target '{target}', model '{agg.table}'"
    if agg.column == "*":
        if agg.fn not in ("COUNT", "EXISTS"):
            raise RfmError(
                f"{where}: {agg.fn}(*) is not defined; name a column "
                f"(only COUNT and EXISTS take '*')"
            )
    else:
        column_stype(graph, agg.table, agg.column, target)
        if agg.fn in ("SUM", "AVG", "MIN", "MAX") and not _is_numeric(
            graph, agg.table, agg.column, target
        ):
            col = t.column(agg.column)
            raise RfmError(
                f"{where}, column '{agg.column}': {agg.fn} needs a numeric column, "
                f"found {col.data_type} ({col.stype})"
            )
    if agg.fn == "LIST_DISTINCT":
        link_cols = [lk.child_columns for lk in graph.links_from(agg.table)]
        if (agg.column,) not in link_cols:
            raise RfmError(
                f"{where}, column '{agg.column}': LIST_DISTINCT needs a link column "
                f"(a foreign key to another model) to rank its parents; links of "
                f"'{agg.table}': {', '.join(lk.name for lk in graph.links_from(agg.table))}"
            )
    _check_condition(graph, agg.where, agg.table, target)
    if t.time_column is None:
        raise RfmError(
            f"{where}: a temporal target needs a time column on the aggregated model, "
            f"and '{agg.table}' has none (set meta.rfm.time_column)"
        )
    path_to_entity(graph, agg, entity, target)
    if agg.start is not None and agg.end <= agg.start:
        raise RfmError(
            f"{where}: window end ({agg.end}) must be after window start "
            f"({agg.start}); windows are (start, end] in {agg.unit}"
        )
    if future and (agg.start is None or agg.start < 0):
        raise RfmError(
            f"{where}: a target window looks into the future: start must be >= 0, "
            f"found {agg.start if agg.start is not None else '-INF'}"
        )
    if not future and agg.end > 0:
        raise RfmError(
            f"{where}: an entity filter looks back: window end must be <= 0, found {agg.end}"
        )


def _timestamp(text: str, target: str, what: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise RfmError(
            f"target '{target}': {what} '{text}' is not a timestamp "
            f"(expected e.g. '2013-02-01' or '2013-02-01 06:00:00')"
        ) from None


def validate(target: Target, graph: GraphSpec, scoring_time: datetime | None = None) -> None:
    """Check ``target`` against ``graph``; raise an RfmError at the first problem.

    Args:
        target: the target to check.
        graph: the relational graph.
        scoring_time: when known, also check that the anchor spine is not empty.
    """
    name = target.name
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is None:
        raise RfmError(f"target '{name}': a target name must be an identifier (letters, digits, _)")
    ent = _table(graph, target.entity, name)
    if target.kind == "aggregate" and target.aggregate is not None:
        agg = target.aggregate
        _check_aggregate(graph, agg, target.entity, name, future=True)
        if (
            target.task == "multiclass"
            and column_stype(graph, agg.table, agg.column, name) not in _CATEGORICAL
        ):
            raise RfmError(
                f"target '{name}', model '{agg.table}', column '{agg.column}': "
                f"multiclass needs a categorical column"
            )
        if agg.fn == "LIST_DISTINCT" and target.cast is not None:
            raise RfmError(f"target '{name}': LIST_DISTINCT is a ranking target; drop the cast")
    elif target.static is not None:
        stype = column_stype(graph, target.entity, target.static, name)
        if target.task == "multiclass" and stype not in _CATEGORICAL:
            raise RfmError(
                f"target '{name}', model '{target.entity}', column "
                f"'{target.static}': multiclass needs a categorical column, "
                f"found {stype}"
            )
        if target.task == "binary" and target.cast is None:
            raise RfmError(
                f"target '{name}', model '{target.entity}', column '{target.static}': a binary "
                "static target needs a cast, e.g. cast: {op: '=', value: true}"
            )
        if target.task == "regression" and not _is_numeric(graph, ent.name, target.static, name):
            raise RfmError(
                f"target '{name}', model '{target.entity}', column "
                f"'{target.static}': regression needs a numeric column"
            )
    if target.top_k is not None and (target.task != "ranking" or target.top_k < 1):
        raise RfmError(f"target '{name}': top_k must be a positive number, for ranking only")
    ef = target.entity_filter
    if ef is not None:
        if ef.aggregate is not None:
            _check_aggregate(graph, ef.aggregate, target.entity, name, future=False)
            if ef.cast is None and ef.aggregate.fn != "EXISTS":
                raise RfmError(
                    f"target '{name}': the entity filter's {ef.aggregate.fn}(...) "
                    f"needs a comparison, e.g. > 0"
                )
        _check_condition(graph, ef.where, target.entity, name)
        if target.kind == "static" and ef.aggregate is not None:
            raise RfmError(
                f"target '{name}': static targets take a condition on '{target.entity}' as "
                f"entity filter, not an aggregate (v1)"
            )
    _check_anchors(target, ent, scoring_time)


def _check_anchors(target: Target, entity: TableSpec, scoring_time: datetime | None) -> None:
    name = target.name
    a = target.anchors
    spine = a.spine
    if spine.step is not None and spine.step <= 0:
        raise RfmError(f"target '{name}': anchors.spine.step must be positive, found {spine.step}")
    start = None if spine.start is None else _timestamp(spine.start, name, "anchors.spine.start")
    end = None if spine.end is None else _timestamp(spine.end, name, "anchors.spine.end")
    if start is not None and end is not None and end < start:
        raise RfmError(
            f"target '{name}': empty anchor spine: end {spine.end} is before start {spine.start}"
        )
    if a.split is not None:
        _timestamp(a.split, name, "anchors.split")
    if a.max_context is not None and a.max_context < 1:
        raise RfmError(
            f"target '{name}': anchors.max_context must be positive, found {a.max_context}"
        )
    if start is not None and scoring_time is not None and target.aggregate is not None:
        from dbt_rfm.labels import add_interval

        if add_interval(start, target.aggregate.end, target.aggregate.unit) > scoring_time:
            raise RfmError(
                f"target '{name}': empty anchor spine: the first anchor {spine.start} plus the "
                f"window ({target.aggregate.end} {target.aggregate.unit}) ends after the "
                f"scoring time {scoring_time}, so no label is fully observed"
            )
    if target.kind == "static" and entity.time_column is None and a.split is not None:
        raise RfmError(
            f"target '{name}': anchors.split needs a time column on model '{entity.name}'"
        )
