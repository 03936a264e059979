"""Synthetic relational databases and random predictive queries, for pretraining.

>>> db = generate(7)
>>> check_db(db)
>>> targets = random_targets(db, np.random.default_rng(7), 4)

See ``docs/pretraining-data.md``.
"""

from dbt_rfm.synth.config import SynthConfig
from dbt_rfm.synth.db import SynthDB, check_db, row_keys
from dbt_rfm.synth.generate import generate
from dbt_rfm.synth.labels import aggregate_values, compute_labels
from dbt_rfm.synth.targets import anchor_spine, random_targets

__all__ = [
    "SynthConfig",
    "SynthDB",
    "aggregate_values",
    "anchor_spine",
    "check_db",
    "compute_labels",
    "generate",
    "random_targets",
    "row_keys",
]
