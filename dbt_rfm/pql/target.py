"""Target: one predictive query, declared in YAML or written in PQL.

YAML form (under the entity model's ``config.meta.rfm.targets``; ``entity`` is implied there)::

    - name: plane_flights_30d
      task: regression                       # inferred when omitted, see infer_task()
      aggregate: {fn: count, table: flights, column: "*", start: 0, end: 30, unit: days}
      entity_filter:
        aggregate: {fn: count, table: flights, start: -30, end: 0}
        cast: {op: ">", value: 0}
      anchors: {spine: {start: "2013-02-01", step: 7}}

    - name: flight_delayed_15                # static: a column of the entity row
      static: dep_delay
      cast: {op: ">", value: 15}             # a boolean column needs none (= TRUE)
      anchors: {split: "2013-12-01"}
      history: {windows: [3, 24, 168], unit: hours}  # static only; default 1, 7, 28 days
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dbt_rfm.errors import RfmError
from dbt_rfm.pql.conditions import check_keys
from dbt_rfm.pql.ir import (
    KINDS,
    TASKS,
    Aggregate,
    Anchors,
    Cast,
    EntityFilter,
    History,
    _enum,
    _int,
)
from dbt_rfm.spec import GraphSpec

_KEYS = (
    "name",
    "entity",
    "kind",
    "task",
    "aggregate",
    "static",
    "cast",
    "entity_filter",
    "top_k",
    "anchors",
    "history",
    "description",
)
#: The cast a boolean static target gets when it declares none: the label is the column.
BOOLEAN_CAST = Cast("=", True)


def infer_task(aggregate: Aggregate | None, cast: Cast | None) -> str | None:
    """The task a target implies, or None when it depends on a column's stype.

    A cast or EXISTS gives ``binary``; LIST_DISTINCT ``ranking``; COUNT, SUM, AVG and
    COUNT_DISTINCT ``regression``. MIN / MAX / FIRST / LAST and static columns depend on the
    column (numerical: regression; categorical: multiclass).
    """
    if cast is not None:
        return "binary"
    if aggregate is None:
        return None
    if aggregate.fn == "EXISTS":
        return "binary"
    if aggregate.fn == "LIST_DISTINCT":
        return "ranking"
    if aggregate.fn in ("COUNT", "SUM", "AVG", "COUNT_DISTINCT"):
        return "regression"
    return None


def _stype(graph: GraphSpec | None, table: str, column: str) -> str | None:
    """The stype of ``table.column``; None without a graph or when either is unknown (the
    target's validation names that mistake)."""
    if graph is None:
        return None
    try:
        return graph.table(table).column(column).stype
    except RfmError:
        return None


@dataclass(frozen=True)
class Target:
    """One predictive query.

    Attributes:
        name: target name (unique in the project); keys every rfm table.
        entity: the entity dbt model (``FOR EACH entity.pk``).
        kind: ``aggregate`` (future window over a linked table) or ``static`` (entity column).
        task: one of :data:`~dbt_rfm.pql.ir.TASKS`.
        aggregate: the aggregate, for ``kind == "aggregate"``.
        static: the entity column, for ``kind == "static"``.
        cast: comparison making the target binary, or None.
        entity_filter: which entities become anchors, or None (all of them).
        top_k: ranking only: how many items to predict.
        anchors: spine / split settings.
        history: static targets: the windows of the sibling history, else None.
        description: free text for docs.
    """

    name: str
    entity: str
    kind: str
    task: str
    aggregate: Aggregate | None = None
    static: str | None = None
    cast: Cast | None = None
    entity_filter: EntityFilter | None = None
    top_k: int | None = None
    anchors: Anchors = field(default_factory=Anchors)
    history: History | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "static" and self.history is None:
            object.__setattr__(self, "history", History())

    @classmethod
    def from_dict(
        cls, raw: Mapping[str, Any], entity: str | None = None, graph: GraphSpec | None = None
    ) -> Target:
        """Lift one YAML target. ``entity`` is the model the target is declared on; with
        ``graph``, a static target on a boolean column without a cast gets
        :data:`BOOLEAN_CAST` (without it, such a target must spell its cast out).

        Raises:
            RfmError: unknown keys (with the closest allowed one), missing or inconsistent
                fields; the message names the target and the entity model.
        """
        if not isinstance(raw, Mapping):
            raise RfmError(f"targets on model '{entity}' must be mappings, found {raw!r}")
        name = str(raw.get("name", "?"))
        ent = raw.get("entity", entity)
        where = f"target '{name}' on model '{ent}'"
        check_keys(raw, _KEYS, where, required=("name",))
        if ent is None:
            raise RfmError(f"{where}: missing required key 'entity'")
        if entity is not None and ent != entity:
            raise RfmError(f"{where}: declared on model '{entity}' but says entity '{ent}'")
        agg = raw.get("aggregate")
        static = raw.get("static")
        if (agg is None) == (static is None):
            raise RfmError(
                f"{where}: give exactly one of 'aggregate' (a future window over a "
                f"linked model) or 'static' (a column of '{ent}')"
            )
        kind = "aggregate" if agg is not None else "static"
        if raw.get("kind") is not None and _enum(raw["kind"], KINDS, where, "kind", False) != kind:
            raise RfmError(f"{where}: kind '{raw['kind']}' does not match the '{kind}' given")
        aggregate = None if agg is None else Aggregate.from_dict(agg, where)
        cast = None if raw.get("cast") is None else Cast.from_dict(raw["cast"], where)
        task = raw.get("task")
        if (
            static is not None
            and cast is None
            and task in (None, "binary")
            and _stype(graph, str(ent), str(static)) == "boolean"
        ):
            cast = BOOLEAN_CAST
        inferred = infer_task(aggregate, cast)
        if task is None:
            if inferred is None:
                raise RfmError(
                    f"{where}: cannot infer the task; add task: regression or task: "
                    "multiclass, or a cast such as cast: {op: '=', value: true} for binary"
                )
            task = inferred
        task = _enum(task, TASKS, where, "task", upper=False)
        if inferred is not None and task != inferred:
            raise RfmError(
                f"{where}: task '{task}' does not match the target, which is '{inferred}'"
            )
        top_k = raw.get("top_k")
        if task == "ranking" and top_k is None:
            top_k = 10
        ef = raw.get("entity_filter")
        if kind != "static" and raw.get("history") is not None:
            raise RfmError(
                f"{where}: history applies to static targets (aggregate targets read their "
                "history over their label window)"
            )
        return cls(
            name=name,
            entity=str(ent),
            kind=kind,
            task=task,
            aggregate=aggregate,
            static=None if static is None else str(static),
            cast=cast,
            entity_filter=None if ef is None else EntityFilter.from_dict(ef, where),
            top_k=None if top_k is None else _int(top_k, where, "top_k"),
            anchors=Anchors.from_dict(raw.get("anchors"), where),
            history=History.from_dict(raw.get("history"), where) if kind == "static" else None,
            description=raw.get("description"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The YAML form, with every default spelled out (``from_dict`` inverts it)."""
        out: dict[str, Any] = {
            "name": self.name,
            "entity": self.entity,
            "kind": self.kind,
            "task": self.task,
        }
        if self.aggregate is not None:
            out["aggregate"] = self.aggregate.to_dict()
        if self.static is not None:
            out["static"] = self.static
        if self.cast is not None:
            out["cast"] = self.cast.to_dict()
        if self.entity_filter is not None:
            out["entity_filter"] = self.entity_filter.to_dict()
        if self.top_k is not None:
            out["top_k"] = self.top_k
        out["anchors"] = self.anchors.to_dict()
        if self.history is not None:
            out["history"] = self.history.to_dict()
        if self.description is not None:
            out["description"] = self.description
        return out

    @property
    def window_end(self) -> tuple[int, str] | None:
        """The label window's end and unit (aggregate targets), else None."""
        return None if self.aggregate is None else (self.aggregate.end, self.aggregate.unit)
