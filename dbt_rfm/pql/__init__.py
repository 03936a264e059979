"""Predictive queries: the IR, the PQL string parser and validation against the graph.

>>> target = parse("PREDICT COUNT(flights.*, 0, 30, days) FOR EACH planes.tailnum", graph)
>>> Target.from_dict(target.to_dict()) == target
True
"""

from dbt_rfm.pql.conditions import BoolOp, Compare, Condition, Not
from dbt_rfm.pql.ir import AGG_FNS, TASKS, UNITS, Aggregate, Anchors, Cast, EntityFilter, Spine
from dbt_rfm.pql.parser import parse
from dbt_rfm.pql.render import to_pql
from dbt_rfm.pql.target import Target
from dbt_rfm.pql.validate import validate

__all__ = [
    "AGG_FNS",
    "TASKS",
    "UNITS",
    "Aggregate",
    "Anchors",
    "BoolOp",
    "Cast",
    "Compare",
    "Condition",
    "EntityFilter",
    "Not",
    "Spine",
    "Target",
    "parse",
    "to_pql",
    "validate",
]
