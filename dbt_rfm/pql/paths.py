"""The link path from an aggregated model to the entity: one link (a direct child) or two
(a grandchild through ``via``, e.g. order lines -> orders -> customers).

The Jinja twin is the path resolution in ``_rfm_normalize_aggregate``; both take the same
choices: a direct link wins unless ``via`` is given; a two-hop path is searched only then,
and must be unique.
"""

from __future__ import annotations

from dbt_rfm.errors import RfmError, did_you_mean
from dbt_rfm.pql.ir import Aggregate
from dbt_rfm.spec import GraphSpec, LinkSpec


def path_to_entity(
    graph: GraphSpec, agg: Aggregate, entity: str, target: str
) -> tuple[LinkSpec, ...]:
    """Links from ``agg.table`` to ``entity``: ``(link,)`` or ``(table->via, via->entity)``.

    ``agg.link`` (child columns) picks the first link when the table has several candidates;
    ``agg.via`` names the middle model of a two-hop path.

    Raises:
        RfmError: no path, or several and ``link`` / ``via`` do not pick one; the message names
            the target, the models and the candidate links.
    """
    first = [lk for lk in graph.links_from(agg.table) if agg.link in (None, lk.child_columns)]
    if agg.via is None:
        direct = [lk for lk in first if lk.parent == entity]
        if len(direct) == 1:
            return (direct[0],)
        if len(direct) > 1:
            raise RfmError(
                f"target '{target}': model '{agg.table}' links to '{entity}' in several ways "
                f"({', '.join(lk.name for lk in direct)}); pick one with aggregate.link"
            )
    elif agg.via not in [t.name for t in graph.tables]:
        names = [t.name for t in graph.tables]
        raise RfmError(
            f"target '{target}': aggregate.via names no model '{agg.via}'"
            f"{did_you_mean(agg.via, names)}"
        )
    paths = [
        (lk1, lk2)
        for lk1 in first
        if lk1.parent not in (entity, agg.table) and agg.via in (None, lk1.parent)
        for lk2 in graph.links_from(lk1.parent)
        if lk2.parent == entity
    ]
    if not paths:
        raise RfmError(
            f"target '{target}': model '{agg.table}' has no link to the entity '{entity}'"
            + ("" if agg.link is None else f" through columns {list(agg.link)}")
            + ("" if agg.via is None else f" through model '{agg.via}'")
            + "; aggregates read a model with a foreign key to the entity, or to a model "
            "that has one (declare links with foreign_key constraints or relationships tests)"
        )
    if len(paths) > 1:
        listed = "; ".join(f"{a.name} then {b.name}" for a, b in paths)
        raise RfmError(
            f"target '{target}': model '{agg.table}' reaches '{entity}' in several ways "
            f"({listed}); pick one with aggregate.via (and aggregate.link)"
        )
    return paths[0]
