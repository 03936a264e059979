"""GraphSpec as the dict that the Jinja macro ``dbt_rfm.rfm_graph()`` returns.

The SQL macros take that dict as an argument. Tests and benchmarks pass it as a dbt var (JSON)
built from a GraphSpec with :func:`graph_dict`, so the macros can be exercised on any graph
without the YAML that ``rfm_graph()`` reads.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dbt_rfm.spec import GraphSpec

__all__ = ["graph_dict"]


def graph_dict(spec: GraphSpec) -> dict[str, Any]:
    """Return ``{"tables": {name: {...}}, "links": [{...}]}`` in the shape of ``rfm_graph()``."""
    return {
        "tables": {
            t.name: {
                "name": t.name,
                "relation": t.relation,
                "primary_key": list(t.primary_key),
                "time_column": t.time_column,
                "columns": [asdict(c) for c in t.columns],
            }
            for t in spec.tables
        },
        "links": [
            {
                "name": lk.name,
                "child": lk.child,
                "child_columns": list(lk.child_columns),
                "parent": lk.parent,
                "parent_columns": list(lk.parent_columns),
            }
            for lk in spec.links
        ],
    }
