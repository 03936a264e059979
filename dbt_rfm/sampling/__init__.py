"""Temporal subgraph sampling in process: the same ids as the SQL macros, on Arrow and numpy.

``sample`` returns SUBGRAPH rows, ``cells`` the CELLS of a subgraph; build a ``GraphIndex``
once and pass it instead of the spec to reuse it across calls. See ``docs/sampling.md``.
"""

from dbt_rfm.sampling.cells import cells
from dbt_rfm.sampling.graph_dict import graph_dict
from dbt_rfm.sampling.index import GraphIndex
from dbt_rfm.sampling.sample import DEFAULT_FANOUTS, DEFAULT_HOPS, sample

__all__ = ["DEFAULT_FANOUTS", "DEFAULT_HOPS", "GraphIndex", "cells", "graph_dict", "sample"]
