"""Time-aware aggregates over the link graph, computed in the warehouse's SQL (DuckDB).

For anchors ``(entity_id, anchor_time)`` of an entity table, every *link path* (a walk over
foreign keys, forward = child to parent, backward = parent to children) yields features:

* a path of forward steps only ends on one row: its numeric columns, NULL unless the row is
  known at the anchor time;
* a path ``forward* backward forward*`` ends on many rows (the children reached by the
  backward step, each enriched by the later forward steps): count, sum, mean, min, max over
  each window ``[t - w, t]`` (and over all history), and the last known value.

Time rule: a row takes part only when its availability time (:attr:`FeatureTable.known_at`,
the latest over the joined rows) is ``<= anchor_time``. Windowed aggregates are computed in
one pass per path: data rows and anchors are put in one stream, partitioned by the link key
and ordered by time, and the anchors read ``RANGE`` window frames ending at themselves, so
the cost does not grow with a key's fan-out (three airports own every flight).

Two readers (decision 0020): the benchmark's ``lgbm_aggregates`` baseline, over a graph it
writes by hand, and the tree head of ``dbt-rfm finetune``, over the declared graph
(:func:`graph_from_spec`), which reads them by name beside the readout's inputs
(:data:`PREFIX`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from dbt_rfm import duck
from dbt_rfm.errors import RfmError, did_you_mean
from dbt_rfm.labels import UNIT_SECONDS
from dbt_rfm.spec import GraphSpec, LinkSpec

#: Windows every aggregate path is read over; None means all history up to the anchor.
DEFAULT_WINDOWS: tuple[timedelta | None, ...] = (
    timedelta(days=1),
    timedelta(days=7),
    timedelta(days=30),
    None,
)
ANCHORS = "_rfm_aggregate_anchors"
#: Name prefix of an aggregate among a tree head's named inputs.
PREFIX = "agg:"
#: Tasks whose tree head reads the aggregates (a ranking tree head reads pairs).
AGGREGATE_TASKS = ("binary", "regression")


def aggregate_windows(extra: Sequence[timedelta] = ()) -> tuple[timedelta | None, ...]:
    """:data:`DEFAULT_WINDOWS` plus ``extra`` (a static target's history windows), shortest
    first, all history last."""
    bounded = {w for w in DEFAULT_WINDOWS if w is not None} | set(extra)
    return (*sorted(bounded), None)


@dataclass(frozen=True)
class FeatureTable:
    """A table of the graph as seen by the feature builder.

    Attributes:
        name: relation name in the DuckDB file.
        key: primary key columns.
        known_at: SQL over table alias ``{t}`` giving the time the row's values become known,
            or None for a static table (always visible).
        numeric: feature name -> SQL expression over table alias ``{t}`` (a number).
        categorical: columns used as categorical features of the entity itself.
        relation: the relation it reads, when not ``name`` (two tables over one relation
            whose columns become known at different times).
    """

    name: str
    key: tuple[str, ...]
    known_at: str | None
    numeric: dict[str, str] = field(default_factory=dict)
    categorical: tuple[str, ...] = ()
    relation: str | None = None

    @property
    def source(self) -> str:
        """The relation the table reads."""
        return self.relation or self.name

    def known_at_as(self, alias: str) -> str | None:
        """:attr:`known_at` over table alias ``alias``."""
        return None if self.known_at is None else self.known_at.format(t=alias)

    def numeric_as(self, alias: str) -> dict[str, str]:
        """:attr:`numeric` over table alias ``alias``."""
        return {n: e.format(t=alias) for n, e in self.numeric.items()}


@dataclass(frozen=True)
class Graph:
    """Tables by name and the links (foreign keys) between them."""

    tables: dict[str, FeatureTable]
    links: tuple[LinkSpec, ...]

    def table(self, name: str) -> FeatureTable:
        """Return the table called ``name`` or raise an RfmError suggesting the closest one."""
        if name not in self.tables:
            raise RfmError(f"no table '{name}' in the graph{did_you_mean(name, self.tables)}")
        return self.tables[name]


def graph_from_spec(spec: GraphSpec) -> Graph:
    """The declared graph as the feature builder sees it: each table's number and boolean
    columns (keys and link columns left out), known at its row time (static tables: always);
    the columns with a ``meta.rfm.available_at`` form a table ``<name>@<column>`` over the same
    relation, known strictly after that column's time, with the table's links to its parents."""
    tables: list[FeatureTable] = []
    links = list(spec.links)
    for t in spec.tables:
        linked = {c for lk in spec.links if lk.child == t.name for c in lk.child_columns}
        groups: dict[str | None, dict[str, str]] = {}
        for c in t.columns:
            if c.stype in ("numerical", "boolean") and c.name not in linked:
                cast = "::int" if c.stype == "boolean" else ""
                groups.setdefault(c.available_at, {})[c.name] = f'{{t}}."{c.name}"{cast}'
        time = None if t.time_column is None else f'{{t}}."{t.time_column}"'
        tables.append(FeatureTable(t.name, t.primary_key, time, groups.pop(None, {}),
                                   relation=t.relation))  # fmt: skip
        for at, numeric in groups.items():
            name = f"{t.name}@{at}"
            known = f'({{t}}."{at}" + interval 1 microsecond)'
            tables.append(FeatureTable(name, t.primary_key, known, numeric, relation=t.relation))
            links += [
                LinkSpec(name, lk.child_columns, lk.parent, lk.parent_columns)
                for lk in spec.links
                if lk.child == t.name
            ]
    return Graph({t.name: t for t in tables}, tuple(links))


@dataclass(frozen=True)
class Step:
    """One traversal of a link: ``forward`` goes child -> parent (one row), else parent ->
    children (many rows)."""

    link: LinkSpec
    forward: bool

    @property
    def source(self) -> str:
        """Table the step starts from."""
        return self.link.child if self.forward else self.link.parent

    @property
    def target(self) -> str:
        """Table the step arrives at."""
        return self.link.parent if self.forward else self.link.child

    @property
    def name(self) -> str:
        """``.fk->parent`` or ``<-child.fk``."""
        cols = "+".join(self.link.child_columns)
        return f".{cols}->{self.target}" if self.forward else f"<-{self.target}.{cols}"


@dataclass(frozen=True)
class LinkPath:
    """A walk from the entity table: ``forward* [backward forward*]`` (at most one backward)."""

    entity: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise RfmError(f"link path from '{self.entity}' has no steps")
        at = self.entity
        for s in self.steps:
            if s.source != at:
                raise RfmError(f"link path {self.name}: step {s.name} does not start at '{at}'")
            at = s.target
        if sum(not s.forward for s in self.steps) > 1:
            raise RfmError(f"link path {self.name}: more than one backward step")

    @property
    def name(self) -> str:
        """Readable name, e.g. ``flights.tailnum->planes<-flights.tailnum``."""
        return self.entity + "".join(s.name for s in self.steps)

    @property
    def backward_at(self) -> int | None:
        """Index of the backward step, or None for a forward-only path."""
        return next((i for i, s in enumerate(self.steps) if not s.forward), None)


def enumerate_paths(graph: Graph, entity: str, max_hops: int = 2) -> list[LinkPath]:
    """All paths of at most ``max_hops`` steps from ``entity`` that end on numeric columns or
    aggregate over children; a backward step is never followed by the same link forward
    (that returns to the start row)."""
    out: list[LinkPath] = []

    def walk(steps: tuple[Step, ...], at: str) -> None:
        if steps:
            path = LinkPath(entity, steps)
            ends_on_values = bool(graph.table(at).numeric)
            if ends_on_values or not steps[-1].forward:
                out.append(path)
        if len(steps) == max_hops:
            return
        has_backward = any(not s.forward for s in steps)
        for lk in graph.links:
            if lk.child == at:
                if steps and not steps[-1].forward and steps[-1].link == lk:
                    continue
                walk((*steps, Step(lk, True)), lk.parent)
            if lk.parent == at and not has_backward:
                walk((*steps, Step(lk, False)), lk.child)

    walk((), entity)
    return out


@dataclass(frozen=True)
class FeatureMatrix:
    """Features of anchors, in anchor order.

    Attributes:
        names: feature names ``[F]``.
        values: float64 ``[N, F]``; NaN where unknown.
    """

    names: tuple[str, ...]
    values: np.ndarray


def build_features(
    con: duckdb.DuckDBPyConnection,
    graph: Graph,
    anchors: pa.Table,
    entity: str,
    paths: list[LinkPath],
    windows: tuple[timedelta | None, ...] = DEFAULT_WINDOWS,
) -> FeatureMatrix:
    """Aggregate features of every path for every anchor.

    Args:
        con: connection to the DuckDB file holding the graph tables.
        graph: the graph (tables, availability times, links).
        anchors: ``entity_id string, anchor_time timestamp`` ``[N]`` rows.
        entity: the entity table; its single-column key cast to text is ``entity_id``.
        paths: link paths starting at ``entity``.
        windows: window lengths (None: all history).

    Returns:
        A :class:`FeatureMatrix` with ``N`` rows in the order of ``anchors``.
    """
    register_anchors(con, anchors)
    names: list[str] = []
    blocks: list[np.ndarray] = []
    try:
        for path in paths:
            if path.entity != entity:
                raise RfmError(f"path {path.name} does not start at entity '{entity}'")
            sql, cols = path_sql(graph, path, windows)
            table = duck.arrow_table(con, sql)
            blocks.append(_to_matrix(table, cols, anchors.num_rows))
            names.extend(f"{path.name}:{c}" for c in cols)
    finally:
        con.unregister(ANCHORS)
    values = np.hstack(blocks) if blocks else np.zeros((anchors.num_rows, 0))
    return FeatureMatrix(tuple(names), values)


def read_graph_target(
    cur: Any, graph_spec: str, targets: str, target: str
) -> tuple[GraphSpec, dict[str, Any]]:
    """The declared graph (relation ``graph_spec``: ``rfm_graph_spec``) and ``target``'s
    definition (relation ``targets``: ``rfm_targets``), read through ``cur``."""
    spec = GraphSpec.from_rows(duck.arrow_table(cur, f"select * from {graph_spec}").to_pylist())
    found = duck.rows(cur, f"select definition from {targets} where target_name = ?", [target])
    if not found:
        raise RfmError(f"target '{target}' is not a row of {targets}")
    return spec, json.loads(found[0][0])


def target_windows(definition: dict[str, Any]) -> tuple[timedelta | None, ...]:
    """The aggregate windows of a target (its ``rfm_targets.definition``): the default ones,
    plus a static target's ``history`` windows."""
    history = definition.get("history") or {}
    unit = UNIT_SECONDS[history.get("unit", "days")]
    return aggregate_windows([timedelta(seconds=w * unit) for w in history.get("windows", ())])


def target_aggregates(
    con: duckdb.DuckDBPyConnection,
    spec: GraphSpec,
    entity: str,
    windows: tuple[timedelta | None, ...],
    anchors: pa.Table,
    names: Sequence[str] | None = None,
) -> pa.Table | None:
    """The aggregates a tree head reads for ``anchors`` of one target (decision 0020).

    Args:
        con: connection to the warehouse holding the graph's relations.
        spec: the declared graph.
        entity: the target's entity table.
        windows: the windows (:func:`target_windows`).
        anchors: ``entity_id, anchor_time`` rows.
        names: the aggregates to read (:data:`PREFIX` names); None: every path of two hops.

    Returns:
        ``entity_id, anchor_time`` and one float32 column per aggregate, in the order of
        ``anchors``; None when the entity has a composite key (no aggregates).

    Raises:
        RfmError: when one of ``names`` is not an aggregate of the declared graph.
    """
    graph = graph_from_spec(spec)
    if len(graph.table(entity).key) != 1:
        return None
    paths = enumerate_paths(graph, entity)
    if names is not None:
        wanted = {n[len(PREFIX) :].rsplit(":", 1)[0] for n in names}
        paths = [p for p in paths if p.name in wanted]
    found = build_features(con, graph, anchors, entity, paths, windows)
    index = {PREFIX + n: j for j, n in enumerate(found.names)}
    keep = list(index) if names is None else list(names)
    missing = [n for n in keep if n not in index]
    if missing:
        raise RfmError(
            f"aggregate '{missing[0]}': the declared graph (rfm_graph_spec) and the target's "
            f"windows no longer yield it{did_you_mean(missing[0], index)}; fine-tune the "
            "target again"
        )
    columns = [pa.array(found.values[:, index[n]], pa.float32()) for n in keep]
    keys = anchors.select(["entity_id", "anchor_time"])
    return pa.Table.from_arrays([*keys.columns, *columns], [*keys.column_names, *keep])


def register_anchors(con: duckdb.DuckDBPyConnection, anchors: pa.Table) -> None:
    """Expose ``anchors`` plus ``anchor_idx`` (row number from 0) as :data:`ANCHORS`."""
    with_idx = anchors.select(["entity_id", "anchor_time"]).append_column(
        "anchor_idx", pa.array(np.arange(anchors.num_rows, dtype=np.int64))
    )
    con.register(ANCHORS, with_idx)


def _to_matrix(table: pa.Table, cols: list[str], n: int) -> np.ndarray:
    """float64 ``[n, len(cols)]`` from a result with ``anchor_idx`` and ``cols``, rounded to
    float32: DuckDB's parallel window sums differ in the last bits from run to run, which moved
    LightGBM's bins and the baseline's AUROC by up to 0.003 between identical runs."""
    idx = table.column("anchor_idx").to_numpy()
    out = np.full((n, len(cols)), np.nan)
    for j, c in enumerate(cols):
        out[idx, j] = table.column(c).to_numpy(zero_copy_only=False).astype(np.float32)
    return out


def path_sql(
    graph: Graph, path: LinkPath, windows: tuple[timedelta | None, ...]
) -> tuple[str, list[str]]:
    """SELECT of ``anchor_idx`` and the path's features over :data:`ANCHORS`, and their names."""
    entity = graph.table(path.entity)
    if len(entity.key) != 1:
        raise RfmError(f"entity table '{entity.name}' needs a single-column key")
    b = path.backward_at
    if b is None:
        return _forward_sql(graph, path)
    return _aggregate_sql(graph, path, b, windows)


def _forward_joins(graph: Graph, steps: tuple[Step, ...], first: str) -> tuple[str, list[str]]:
    """LEFT JOINs along forward ``steps`` from alias ``first`` (aliases ``{first}1``, ...), and
    the availability expressions of the joined rows."""
    joins, known = [], []
    prev = first
    for i, s in enumerate(steps, start=1):
        alias = f"{first}{i}"
        on = " and ".join(
            f"{alias}.{pc} = {prev}.{cc}"
            for cc, pc in zip(s.link.child_columns, s.link.parent_columns, strict=True)
        )
        joins.append(f"left join {graph.table(s.target).source} as {alias} on {on}")
        k = graph.table(s.target).known_at_as(alias)
        if k is not None:
            known.append(k)
        prev = alias
    return "\n".join(joins), known


def _entity_join(graph: Graph, entity: str) -> str:
    table = graph.table(entity)
    key = table.key[0]
    return f"from {ANCHORS} as a left join {table.source} as e on e.{key}::varchar = a.entity_id"


def _forward_sql(graph: Graph, path: LinkPath) -> tuple[str, list[str]]:
    joins, known = _forward_joins(graph, path.steps, "e")
    last = f"e{len(path.steps)}"
    visible = " and ".join(f"{k} <= a.anchor_time" for k in known) or "true"
    values = graph.table(path.steps[-1].target).numeric_as(last)
    cols = list(values)
    select = ", ".join(
        f'(case when {visible} then {expr} end)::double as "{c}"' for c, expr in values.items()
    )
    return f"select a.anchor_idx, {select}\n{_entity_join(graph, path.entity)}\n{joins}", cols


def _window_name(w: timedelta | None) -> str:
    if w is None:
        return "all"
    seconds = int(w.total_seconds())
    return f"{seconds // 86_400}d" if seconds % 86_400 == 0 else f"{seconds // 3_600}h"


def _aggregate_sql(
    graph: Graph, path: LinkPath, b: int, windows: tuple[timedelta | None, ...]
) -> tuple[str, list[str]]:
    before, back, after = path.steps[:b], path.steps[b], path.steps[b + 1 :]
    # Anchor side: the key of the table the backward step starts from. After a forward step
    # it equals that step's foreign-key values, so the parent row itself is not needed.
    fjoins, _ = _forward_joins(graph, before[:-1], "e")
    if before:
        last = before[-1].link
        holder = f"e{len(before) - 1}" if len(before) > 1 else "e"
        by_parent = dict(zip(last.parent_columns, last.child_columns, strict=True))
        anchor_keys = [f"{holder}.{by_parent[pc]}" for pc in back.link.parent_columns]
    else:
        anchor_keys = [f"e.{pc}" for pc in back.link.parent_columns]
    keys = [f"k{i}" for i in range(len(anchor_keys))]
    # Row side: children reached by the backward step, enriched by later forward steps.
    child = graph.table(back.target)
    rjoins, rknown = _forward_joins(graph, after, "r")
    ck = child.known_at_as("r")
    known = ([ck] if ck is not None else []) + rknown
    row_time = f"greatest({', '.join(known)})" if known else "timestamp '1900-01-01'"
    values = (
        graph.table(after[-1].target).numeric_as(f"r{len(after)}")
        if after
        else child.numeric_as("r")
    )
    vcols = [f"v{i}" for i in range(len(values))]
    # "last" orders by time, then by the child's key, so ties resolve the same way every run.
    order = (
        "{"
        + ", ".join([f"'t': {row_time}"] + [f"'k{i}': r.{c}" for i, c in enumerate(child.key)])
        + "} as ord"
    )
    not_null = " and ".join(f"r.{c} is not null" for c in back.link.child_columns)
    # Only keys some anchor asks for: windows are computed for every row of the stream.
    semi = " and ".join(
        f"ak.{k} = r.{c}" for c, k in zip(back.link.child_columns, keys, strict=True)
    )
    row_select = ", ".join(
        [f"r.{c} as {k}" for c, k in zip(back.link.child_columns, keys, strict=True)]
        + [f"{row_time} as t", "null::bigint as anchor_idx", f"{row_time} as rt", order]
        + [f"({e})::double as {v}" for e, v in zip(values.values(), vcols, strict=True)]
    )
    anchor_select = ", ".join(
        [f"{e} as {k}" for e, k in zip(anchor_keys, keys, strict=True)]
        + ["a.anchor_time as t", "a.anchor_idx", "null::timestamp as rt", "null as ord"]
        + [f"null::double as {v}" for v in vcols]
    )
    part = ", ".join(keys)
    wdefs, exprs, cols = [], [], []
    for j, w in enumerate(windows):
        frame = "unbounded" if w is None else f"interval {int(w.total_seconds())} second"
        wdefs.append(
            f"w{j} as (partition by {part} order by t range between {frame} preceding "
            "and current row)"
        )
        wn = _window_name(w)
        exprs.append(f'count(rt) over w{j} as "count_{wn}"')
        cols.append(f"count_{wn}")
        for name, v in zip(values, vcols, strict=True):
            for agg, fn in (("sum", "sum"), ("mean", "avg"), ("min", "min"), ("max", "max")):
                exprs.append(f'{fn}({v}) over w{j} as "{name}_{agg}_{wn}"')
                cols.append(f"{name}_{agg}_{wn}")
    wdefs.append(
        f"wl as (partition by {part} order by t range between unbounded preceding and current row)"
    )
    for name, v in zip(values, vcols, strict=True):
        exprs.append(f'arg_max({v}, ord) over wl as "{name}_last"')
        cols.append(f"{name}_last")
    sql = f"""
        with anchor_keys as (
            select {anchor_select}
            {_entity_join(graph, path.entity)}
            {fjoins}
        ),
        child_rows as (
            select {row_select}
            from {child.source} as r
            {rjoins}
            where {not_null} and exists (select 1 from anchor_keys as ak where {semi})
        ),
        stream as (
            select * from child_rows where t is not null
            union all by name
            select * from anchor_keys
        )
        select anchor_idx, {", ".join(exprs)}
        from stream
        window {", ".join(wdefs)}
        qualify anchor_idx is not null
    """
    return sql, cols
