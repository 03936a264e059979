"""Synthetic relational databases and random predictive queries, for pretraining.

>>> db = generate(7)
>>> check_db(db)
>>> targets = random_targets(db, np.random.default_rng(7), 4)

See ``docs/pretraining-data.md``.
"""

from dbt_rfm.synth.config import SynthConfig
from dbt_rfm.synth.db import SynthDB, check_db, row_keys
from dbt_rfm.synth.generate import generate
from dbt_rfm.synth.sql_labels import LabelDB
from dbt_rfm.synth.targets import anchor_spine, entities_at, random_targets, target_anchors

__all__ = [
    "LabelDB",
    "SynthConfig",
    "SynthDB",
    "anchor_spine",
    "check_db",
    "entities_at",
    "generate",
    "random_targets",
    "row_keys",
    "target_anchors",
]
