"""Time-travel labels for arbitrary anchors, in SQL, from Python (DuckDB dialect).

This is the Python twin of the ``rfm_label_sql`` macro (which builds ``rfm_labels``): the same
steps, CTE for CTE, so that pretraining and ad hoc calls get labels from the project's own label
machinery. ``tests/test_labels_macro.py`` checks that both give the same rows.

Semantics (see docs/targets.md): a label aggregates the linked rows whose time is in
``(anchor_time + start, anchor_time + end]``; no row after ``anchor_time + end`` is read.
COUNT, SUM, EXISTS and COUNT_DISTINCT give 0 for an empty window and keep the anchor; AVG, MIN,
MAX, FIRST, LAST and LIST_DISTINCT drop it. Static targets read the entity row's own column and
drop anchors whose value is null.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
from rfm_runtime.schema import ITEM_HISTORY, SIBLING_HISTORY, TARGET_HISTORY

from dbt_rfm.errors import RfmError
from dbt_rfm.pql.conditions import condition_columns
from dbt_rfm.pql.ir import ZERO_WHEN_EMPTY, Aggregate
from dbt_rfm.pql.paths import path_to_entity
from dbt_rfm.pql.render import cast_sql, condition_sql
from dbt_rfm.pql.target import Target
from dbt_rfm.spec import GraphSpec

#: The labels table (rfm_labels) without target_name: one row per labelled anchor.
LABELS = pa.schema(
    [
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("anchor_time", pa.timestamp("us"), nullable=False),
        pa.field("label", pa.float64()),  # binary 0/1; regression: the value
        pa.field("label_class", pa.string()),  # multiclass
        pa.field("label_items", pa.list_(pa.string())),  # ranking: distinct parent keys
    ]
)

#: History windows, in label windows (``n_window_<k>`` columns of ``ITEM_HISTORY``,
#: ``per_window_<k>`` of ``TARGET_HISTORY``).
HISTORY_WINDOWS = (1, 4, 13)
#: Aggregates of the regression targets that get a target history (additive over windows).
HISTORY_FNS = ("COUNT", "SUM")
#: Aggregates of a binary target (``EXISTS``, or a ``cast`` of a count or sum) with a target
#: history: its rows counted (``EXISTS``, ``COUNT``) or summed (``SUM``) per past window.
BINARY_HISTORY_FNS = ("EXISTS", "COUNT", "SUM")
#: Seconds per window unit (a month: the mean Gregorian month).
UNIT_SECONDS = {
    "seconds": 1,
    "minutes": 60,
    "hours": 3_600,
    "days": 86_400,
    "weeks": 604_800,
    "months": 2_629_746,
}

_DATEPART = {
    "seconds": "second",
    "minutes": "minute",
    "hours": "hour",
    "days": "day",
    "weeks": "week",
    "months": "month",
}


def add_interval(t: datetime, n: int, unit: str) -> datetime:
    """``t + n unit`` (months: calendar months, clamped to the month's last day)."""
    if unit == "months":
        import calendar

        month0 = t.month - 1 + n
        year, month = t.year + month0 // 12, month0 % 12 + 1
        day = min(t.day, calendar.monthrange(year, month)[1])
        return t.replace(year=year, month=month, day=day)
    return t + timedelta(**{unit: n})


def interval_sql(expr: str, n: int, unit: str) -> str:
    """DuckDB for ``expr + n unit``, as dbt-duckdb renders ``dbt.dateadd``."""
    return f"({expr} + cast({n} as bigint) * interval 1 {_DATEPART[unit]})"


def key_sql(columns: tuple[str, ...], alias: str = "") -> str:
    """A row key as text: ``cast(col as varchar)``, composite keys joined with ``|``."""
    prefix = f"{alias}." if alias else ""
    parts = [f'cast({prefix}"{c}" as varchar)' for c in columns]
    return parts[0] if len(parts) == 1 else f"concat_ws('|', {', '.join(parts)})"


def _agg_expr(agg: Aggregate) -> str:
    v = "w.value"
    return {
        "COUNT": "count(w.row_time)",
        "EXISTS": "count(w.row_time)",
        "SUM": f"coalesce(sum({v}), 0)",
        "AVG": f"avg({v})",
        "MIN": f"min({v})",
        "MAX": f"max({v})",
        "COUNT_DISTINCT": f"count(distinct {v})",
        "FIRST": f"first({v} order by w.row_time, {v})",
        "LAST": f"first({v} order by w.row_time desc, {v} desc)",
        "LIST_DISTINCT": f"list_sort(array_agg(distinct {v}) filter (where {v} is not null))",
    }[agg.fn]


def _label_cols(target: Target, value: str) -> str:
    """Select list ``label, label_class, label_items`` from the aggregated ``value``."""
    label, label_class, items = (
        "cast(null as double)",
        "cast(null as varchar)",
        "cast(null as varchar[])",
    )
    if target.cast is not None:
        label = f"case when {cast_sql(value, target.cast)} then 1.0 else 0.0 end"
    elif target.aggregate is not None and target.aggregate.fn == "EXISTS":
        label = f"case when {value} > 0 then 1.0 else 0.0 end"
    elif target.task == "regression":
        label = f"cast({value} as double)"
    elif target.task == "multiclass":
        label_class = f"cast({value} as varchar)"
    elif target.task == "ranking":
        items = value
    return f"{label} as label, {label_class} as label_class, {items} as label_items"


def label_sql(
    graph: GraphSpec, target: Target, anchors: str, relations: Mapping[str, str] | None = None
) -> str:
    """SQL selecting ``(entity_id, anchor_time, label, label_class, label_items)``.

    Args:
        graph: the relational graph.
        target: a validated target.
        anchors: a relation or ``(subquery)`` with columns ``entity_id``, ``anchor_time``.
        relations: optional table name -> relation overrides (default: ``TableSpec.relation``).

    Returns:
        DuckDB SQL; one row per distinct anchor that has a label.
    """
    rel = dict(relations or {})
    anchors_cte = _anchors_cte(anchors)
    if target.aggregate is None:
        ent = graph.table(target.entity)
        column = f'e."{target.static}"'
        return (
            f"with {anchors_cte},\nentity_rows as (\n    select {key_sql(ent.primary_key, 'e')} "
            f"as entity_id, {column} as value\n    from {rel.get(ent.name, ent.relation)} as e\n"
            f"    where {column} is not null\n),\nlabelled as (\n    select a.entity_id, "
            f"a.anchor_time, {_label_cols(target, 'r.value')}\n    from anchors as a\n"
            f"    join entity_rows as r on r.entity_id = a.entity_id\n)\n"
            "select * from labelled"
        )
    agg = target.aggregate
    value = "null" if agg.column == "*" else f'c."{agg.column}"'
    if agg.fn == "LIST_DISTINCT":
        value = f"cast({value} as varchar)"
    rows = _child_rows(graph, target, rel, value, filtered=True)
    lo = (
        ""
        if agg.start is None
        else (f"\n        and c.row_time > {interval_sql('a.anchor_time', agg.start, agg.unit)}")
    )
    keep = "true" if agg.fn in ZERO_WHEN_EMPTY else "value is not null"
    if agg.fn == "LIST_DISTINCT":
        keep = "len(value) > 0"
    return f"""with {anchors_cte},
child_rows as ({rows}),
windowed as (
    select a.entity_id, a.anchor_time, c.row_time, c.value
    from anchors as a
    join child_rows as c on c.entity_id = a.entity_id{lo}
        and c.row_time <= {interval_sql("a.anchor_time", agg.end, agg.unit)}
),
aggregated as (
    select a.entity_id, a.anchor_time, {_agg_expr(agg)} as value
    from anchors as a
    left join windowed as w on w.entity_id = a.entity_id and w.anchor_time = a.anchor_time
    group by a.entity_id, a.anchor_time
),
labelled as (
    select entity_id, anchor_time, {_label_cols(target, "value")}
    from aggregated
    where {keep}
)
select * from labelled"""


def _anchors_cte(anchors: str) -> str:
    return (
        "anchors as (\n    select distinct cast(entity_id as varchar) as entity_id,\n"
        f"        cast(anchor_time as timestamp) as anchor_time\n    from {anchors} as a\n)"
    )


def history_window(agg: Aggregate) -> tuple[int, str]:
    """The label window's length ``(n, unit)``: ``end - start`` (``end``, at least 1, when the
    window has no start)."""
    n = agg.end - agg.start if agg.start is not None else agg.end
    return max(n, 1), agg.unit


def item_history_sql(
    graph: GraphSpec, target: Target, anchors: str, relations: Mapping[str, str] | None = None
) -> str:
    """SQL selecting a ranking target's item history (:data:`ITEM_HISTORY`) for ``anchors``.

    Counts the rows of the aggregated model that link each anchor's entity to an item, with a
    row time at or before the anchor time, over the last 1, 4 and 13 label windows
    (:func:`history_window`) and over all time; ``windows_since_last`` is the time since the
    latest one, in label windows. The target's ``where`` is not applied: a filter column may
    become known only after the row's time (``meta.rfm.available_at``), the link never does.

    Raises:
        RfmError: when the target is not a ``LIST_DISTINCT`` aggregate.
    """
    agg = target.aggregate
    if agg is None or agg.fn != "LIST_DISTINCT":
        raise RfmError(f"target '{target.name}': item history needs a LIST_DISTINCT aggregate")
    n, unit = history_window(agg)
    item = f'cast(c."{agg.column}" as varchar)'
    rows = _child_rows(graph, target, dict(relations or {}), item, filtered=False)
    counts = "".join(
        f"\n        cast(sum(case when c.row_time > {interval_sql('a.anchor_time', -k * n, unit)} "
        f"then 1 else 0 end) as bigint) as n_window_{k},"
        for k in HISTORY_WINDOWS
    )
    return f"""with {_anchors_cte(anchors)},
child_rows as ({rows}),
history as (
    select a.entity_id, a.anchor_time, c.value as item,{counts}
        cast(count(*) as bigint) as n_all,
        date_diff('second', max(c.row_time), a.anchor_time) as seconds_since_last
    from anchors as a
    join child_rows as c on c.entity_id = a.entity_id and c.row_time <= a.anchor_time
    group by a.entity_id, a.anchor_time, c.value
)
select entity_id, anchor_time, item, {", ".join(f"n_window_{k}" for k in HISTORY_WINDOWS)},
    n_all, seconds_since_last / {n * UNIT_SECONDS[unit]}.0 as windows_since_last
from history"""


def has_target_history(target: Target) -> bool:
    """Whether ``target`` reads its own history (:func:`target_history_sql`): a regression
    target over ``COUNT`` or ``SUM``, or a binary target over ``EXISTS``, ``COUNT`` or ``SUM``."""
    agg = target.aggregate
    fns = {"regression": HISTORY_FNS, "binary": BINARY_HISTORY_FNS}.get(target.task, ())
    return agg is not None and agg.fn in fns


def target_history_sql(
    graph: GraphSpec, target: Target, anchors: str, relations: Mapping[str, str] | None = None
) -> str:
    """SQL selecting a target's history (:data:`TARGET_HISTORY`) for ``anchors``.

    The target's own aggregate (the count of its rows, or the sum of its column, with its
    ``where``) over the last 1, 4 and 13 label windows before each anchor, per window. A row
    counts when its time is at or before the anchor and every column the aggregate reads is
    known strictly before it (``meta.rfm.available_at``, as the samplers rule).

    Raises:
        RfmError: when the target has no such history (:func:`has_target_history`).
    """
    agg = target.aggregate
    if agg is None or not has_target_history(target):
        raise RfmError(
            f"target '{target.name}': target history needs a regression target over "
            f"{' or '.join(HISTORY_FNS)} or a binary target over "
            f"{', '.join(BINARY_HISTORY_FNS)}"
        )
    n, unit = history_window(agg)
    table = graph.table(agg.table)
    read = ([] if agg.column == "*" else [agg.column]) + list(
        condition_columns(agg.where) if agg.where is not None else ()
    )
    gates = tuple(dict.fromkeys(g for c in read if (g := table.column(c).available_at)))
    value = f'cast(c."{agg.column}" as double)' if agg.fn == "SUM" else "1"
    rows = _child_rows(graph, target, dict(relations or {}), value, filtered=True, gates=gates)
    lo = interval_sql("a.anchor_time", -max(HISTORY_WINDOWS) * n, unit)  # the longest window
    gate = "\n        and c.gate_time < a.anchor_time" if gates else ""
    since = {k: interval_sql("a.anchor_time", -k * n, unit) for k in HISTORY_WINDOWS}
    sums = ",".join(
        f"\n        coalesce(sum(case when c.row_time > {since[k]} then c.value end), 0) / {k}.0"
        f" as per_window_{k}"
        for k in HISTORY_WINDOWS
    )
    columns = ", ".join(f"cast(per_window_{k} as double) as per_window_{k}" for k in since)
    return f"""with {_anchors_cte(anchors)},
child_rows as ({rows}),
history as (
    select a.entity_id, a.anchor_time,{sums}
    from anchors as a
    left join child_rows as c on c.entity_id = a.entity_id
        and c.row_time <= a.anchor_time and c.row_time > {lo}{gate}
    group by a.entity_id, a.anchor_time
)
select entity_id, anchor_time, {columns}
from history"""


def sibling_links(graph: GraphSpec, target: Target) -> list[tuple[str, ...]]:
    """The foreign keys of a static binary target's entity model that define its siblings
    (child columns, distinct); empty when the target has no sibling history: another task or
    kind, no time column on the entity model, or no foreign key."""
    if target.kind != "static" or target.task != "binary":
        return []
    if graph.table(target.entity).time_column is None:
        return []
    return list(dict.fromkeys(lk.child_columns for lk in graph.links if lk.child == target.entity))


def sibling_outcomes(graph: GraphSpec, target: Target) -> list[str]:
    """The columns of a static binary target's entity model whose siblings' means its sibling
    history also holds: number and boolean columns known after the row time (with a
    ``meta.rfm.available_at``: an outcome, like a flight's delay), other than the target's own."""
    ent = graph.table(target.entity)
    return [
        c.name
        for c in ent.columns
        if c.available_at and c.stype in ("numerical", "boolean") and c.name != target.static
    ]


def sibling_history_sql(
    graph: GraphSpec, target: Target, anchors: str, relations: Mapping[str, str] | None = None
) -> str:
    """SQL selecting a static binary target's sibling history (:data:`SIBLING_HISTORY`).

    Siblings of an anchor's row: the other rows of the entity model that share a parent with
    it through one of its foreign keys (``link``: the key's columns, comma-separated), with a
    row time in ``(anchor_time - window, anchor_time]`` (``target.history``). Per link and
    window, the row of the label (``column_name`` empty): the siblings whose label was known
    strictly before the anchor (the static column's ``meta.rfm.available_at``; at its row time
    when it has none) and is not null, the sum of their labels, and the siblings not known yet;
    then one row per :func:`sibling_outcomes` column: the siblings due in the longest window
    whose value became known in this one (strictly before the anchor) and is not null, the sum
    of those values, and the siblings due in the window whose value was not known yet
    (decision 0017).

    Raises:
        RfmError: when the target has no sibling history (:func:`sibling_links` is empty).
    """
    links = sibling_links(graph, target)
    if not links or target.history is None or target.cast is None or target.static is None:
        raise RfmError(
            f"target '{target.name}': sibling history needs a static binary target on a model "
            "with a time column and a foreign key"
        )
    ent = graph.table(target.entity)
    windows, unit = target.history.windows, target.history.unit
    columns = list(dict.fromkeys(c for cols in links for c in cols))
    gate = ent.column(target.static).available_at
    value = f'e."{target.static}"'
    # (column_name, value, known_at, known strictly before the anchor): the label, the outcomes
    terms = [
        (
            "",
            f"case when {value} is null then null when {cast_sql(value, target.cast)} then 1.0"
            " else 0.0 end",
            f'cast(e."{gate or ent.time_column}" as timestamp)',
            gate is not None,
        )
    ]
    for name in sibling_outcomes(graph, target):
        col = ent.column(name)
        v = f'e."{name}"'
        number = (
            f"case when {v} is null then null when {v} then 1.0 else 0.0 end"
            if col.stype == "boolean"
            else f"cast({v} as double)"
        )
        terms.append((name, number, f'cast(e."{col.available_at}" as timestamp)', True))
    not_null = " and ".join(f'e."{c}" is not null' for c in ent.primary_key)
    ctes = []
    for i, cols in enumerate(links, 1):
        sums = ""
        for k in windows:
            start = interval_sql("a.anchor_time", -k, unit)
            for j, (_, _, _, strict) in enumerate(terms):
                known = f"s.known_at_{j} {'<' if strict else '<='} a.anchor_time"
                # the label's siblings are those due in the window; an outcome's, those due in
                # the longest window whose value became known in this one (pending: due in
                # it, not known yet)
                due = f"s.row_time > {start}"
                inside = f"s.known_at_{j} > {start}" if j else due
                sums += (
                    f",\n        sum(case when {inside} and {known} and s.value_{j} is not null"
                    f" then 1 else 0 end) as n_known_{k}_{j},\n        sum(case when {inside} and"
                    f" {known} then coalesce(s.value_{j}, 0) else 0 end) as value_sum_{k}_{j},"
                    f"\n        sum(case when {due} then (case when {known} then 0 else 1 end)"
                    f" else 0 end) as n_pending_{k}_{j}"
                )
        on = "".join(f's."{c}" = a."{c}" and ' for c in cols)
        lo = interval_sql("a.anchor_time", -max(windows), unit)
        ctes.append(
            f"link_{i} as (\n    select a.entity_id, a.anchor_time{sums}\n"
            f"    from anchor_rows as a\n"
            f"    left join entity_rows as s on {on}s.entity_id <> a.entity_id\n"
            f"        and s.row_time <= a.anchor_time and s.row_time > {lo}\n"
            f"    group by a.entity_id, a.anchor_time\n)"
        )
    selects = "\nunion all\n".join(
        f"select entity_id, anchor_time, '{','.join(cols)}' as link,"
        f" cast({k} as bigint) as window_length, '{name}' as column_name,"
        f" cast(n_known_{k}_{j} as bigint) as n_known,"
        f" cast(value_sum_{k}_{j} as double) as value_sum,"
        f" cast(n_pending_{k}_{j} as bigint) as n_pending\nfrom link_{i}"
        for i, cols in enumerate(links, 1)
        for k in windows
        for j, (name, _, _, _) in enumerate(terms)
    )
    link_columns = "".join(f'\n        e."{c}",' for c in columns)
    term_columns = "".join(
        f"\n        {v} as value_{j},\n        {at} as known_at_{j},"
        for j, (_, v, at, _) in enumerate(terms)
    )
    links_sql = ",\n".join(ctes)
    relation = dict(relations or {}).get(ent.name, ent.relation)
    return f"""with {_anchors_cte(anchors)},
entity_rows as (
    select {key_sql(ent.primary_key, "e")} as entity_id,{link_columns}{term_columns}
        cast(e."{ent.time_column}" as timestamp) as row_time
    from {relation} as e
    where {not_null} and e."{ent.time_column}" is not null
),
anchor_rows as (
    select a.entity_id, a.anchor_time{"".join(f', r."{c}"' for c in columns)}
    from anchors as a
    join entity_rows as r on r.entity_id = a.entity_id
),
{links_sql}
{selects}"""


def _child_rows(
    graph: GraphSpec,
    target: Target,
    rel: Mapping[str, str],
    value: str,
    filtered: bool,
    gates: tuple[str, ...] = (),
) -> str:
    """``select entity_id, row_time, value`` over the rows of the target's aggregated model
    that link to an entity (and, when ``filtered``, pass its ``where``); with ``gates`` (the
    availability columns of what the aggregate reads), also ``gate_time``, the latest of them
    (null when one is null: never known)."""
    agg = target.aggregate
    assert agg is not None
    child = graph.table(agg.table)
    path = path_to_entity(graph, agg, target.entity, target.name)
    filters = [f'c."{c}" is not null' for c in path[0].child_columns]
    source = f"{rel.get(child.name, child.relation)} as c"
    key = key_sql(path[0].child_columns, "c")
    if len(path) == 2:  # grandchild: join the middle model for its key of the entity
        mid = graph.table(path[0].parent)
        on = " and ".join(
            f'v."{p}" = c."{c}"'
            for c, p in zip(path[0].child_columns, path[0].parent_columns, strict=True)
        )
        source += f"\n    join {rel.get(mid.name, mid.relation)} as v on {on}"
        key = key_sql(path[1].child_columns, "v")
        filters += [f'v."{c}" is not null' for c in path[1].child_columns]
    if agg.column != "*":
        filters.append(f'c."{agg.column}" is not null')
    if filtered and agg.where is not None:
        filters.append(condition_sql(agg.where, "c"))
    gate = ""
    if gates:
        known = ", ".join(f'c."{g}"' for g in gates)
        nulls = " or ".join(f'c."{g}" is null' for g in gates)
        gate = f",\n        case when {nulls} then null else greatest({known}) end as gate_time"
    return f"""
    select {key} as entity_id,
        cast(c."{child.time_column}" as timestamp) as row_time, {value} as value{gate}
    from {source}
    where {" and ".join(filters)}
"""


def build_labels(
    con: Any,
    graph: GraphSpec,
    target: Target,
    anchors: pa.Table | str,
    relations: Mapping[str, str] | None = None,
) -> pa.Table:
    """Run :func:`label_sql` on a DuckDB connection.

    Args:
        con: a ``duckdb.DuckDBPyConnection``.
        graph: the relational graph.
        target: a validated target.
        anchors: an Arrow table with ``entity_id`` (string) and ``anchor_time`` (timestamp), or
            the name of a relation holding them.
        relations: optional table name -> relation overrides.

    Returns:
        Arrow table with schema :data:`LABELS`, sorted by (entity_id, anchor_time).
    """
    name = anchors if isinstance(anchors, str) else "__rfm_label_anchors"
    if not isinstance(anchors, str):
        con.register(name, anchors)
    try:
        sql = label_sql(graph, target, name, relations)
        table = con.sql(f"select * from ({sql}) order by entity_id, anchor_time").to_arrow_table()
    finally:
        if not isinstance(anchors, str):
            con.unregister(name)
    return table.cast(LABELS)


def build_history(
    con: Any,
    graph: GraphSpec,
    target: Target,
    anchors: pa.Table,
    relations: Mapping[str, str] | None = None,
) -> pa.Table | None:
    """The history a target's readout reads, for an Arrow table of anchors (``entity_id``,
    ``anchor_time``), on a DuckDB connection: :func:`item_history_sql` for a ranking target
    (schema :data:`ITEM_HISTORY`), :func:`target_history_sql` for a target with one
    (:func:`has_target_history`; :data:`TARGET_HISTORY`), :func:`sibling_history_sql` for a
    static binary
    target (:data:`SIBLING_HISTORY`), None for any other; ordered by anchor (then item, or link,
    window and column)."""
    agg = target.aggregate
    if target.task == "ranking" and agg is not None and agg.fn == "LIST_DISTINCT":
        make, schema, order = item_history_sql, ITEM_HISTORY, "anchor_time, entity_id, item"
    elif has_target_history(target):
        make, schema, order = target_history_sql, TARGET_HISTORY, "anchor_time, entity_id"
    elif sibling_links(graph, target):
        make, schema = sibling_history_sql, SIBLING_HISTORY
        order = "anchor_time, entity_id, link, window_length, column_name"
    else:
        return None
    name = "__rfm_history_anchors"
    con.register(name, anchors.select(["entity_id", "anchor_time"]))
    try:
        sql = make(graph, target, name, relations)
        table = con.sql(f"select * from ({sql}) order by {order}").to_arrow_table()
    finally:
        con.unregister(name)
    return table.cast(schema)
