"""Labels of targets over an in-memory database, through the project's own label machinery.

A :class:`~dbt_rfm.synth.db.SynthDB` holds Arrow tables; :class:`LabelDB` registers them in an
in-memory DuckDB connection and runs :func:`dbt_rfm.labels.build_labels` (the Python twin of
the ``rfm_label_sql`` macro) on them, after the target's entity filter, exactly as the
``rfm_anchor_sql`` macro applies it. So random targets, pretraining and scoring all see the
same labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from dbt_rfm.labels import LABELS, build_labels, key_sql
from dbt_rfm.pql.render import condition_sql
from dbt_rfm.pql.target import Target
from dbt_rfm.synth.db import SynthDB

__all__ = ["LabelDB", "as_target"]


def as_target(target: Target | Mapping[str, Any]) -> Target:
    """Lift a YAML target dict (as :func:`dbt_rfm.synth.random_targets` writes) to a Target."""
    return target if isinstance(target, Target) else Target.from_dict(dict(target))


class LabelDB:
    """A SynthDB registered in an in-memory DuckDB connection, for label queries.

    Args:
        db: the database; its tables are registered as views ``rfm_t<i>`` (no copy).
    """

    def __init__(self, db: SynthDB) -> None:
        self.db = db
        self.con = duckdb.connect(":memory:")
        self.relations: dict[str, str] = {}
        for i, t in enumerate(db.spec.tables):
            view = f"rfm_t{i}"
            self.con.register(view, db.tables[t.name])
            self.relations[t.name] = f'"{view}"'

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def __enter__(self) -> LabelDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def passing(self, target: Target | Mapping[str, Any], anchors: pa.Table) -> pa.Table:
        """The anchors that pass the target's entity filter (all of them without one).

        Args:
            anchors: ANCHORS-shaped table (``entity_id`` string, ``anchor_time`` timestamp).

        Returns:
            The passing rows of ``anchors``, in their order.
        """
        t = as_target(target)
        ef = t.entity_filter
        if ef is None:
            return anchors
        keep = pa.array([True] * anchors.num_rows, pa.bool_())
        if ef.where is not None:
            ent = self.db.spec.table(t.entity)
            sql = (
                f"select {key_sql(ent.primary_key, 'e')} as entity_id "
                f"from {self.relations[ent.name]} as e where {condition_sql(ef.where, 'e')}"
            )
            ok_ids = self.con.sql(sql).to_arrow_table()["entity_id"]
            keep = pc.and_(keep, pc.is_in(anchors["entity_id"], value_set=ok_ids))
        if ef.aggregate is not None:
            raw: dict[str, Any] = {
                "name": f"{t.name}_entity_filter",
                "entity": t.entity,
                "aggregate": ef.aggregate.to_dict(),
            }
            if ef.cast is not None:
                raw["cast"] = ef.cast.to_dict()
            flt = Target.from_dict(raw)
            got = build_labels(self.con, self.db.spec, flt, anchors, self.relations)
            passed = got.filter(pc.equal(got["label"], 1.0))
            keep = pc.and_(keep, _anchor_in(anchors, passed))
        return anchors.filter(keep)

    def labels(self, target: Target | Mapping[str, Any], anchors: pa.Table) -> pa.Table:
        """Labels of ``target`` at the anchors that pass its entity filter.

        Args:
            target: a Target or its YAML dict.
            anchors: ANCHORS-shaped table.

        Returns:
            Schema :data:`dbt_rfm.labels.LABELS`, sorted by (entity_id, anchor_time); anchors
            with no label (filtered out, or an empty window for AVG/MIN/MAX/FIRST/LAST/
            LIST_DISTINCT) are dropped.
        """
        t = as_target(target)
        kept = self.passing(t, anchors)
        if kept.num_rows == 0:
            return LABELS.empty_table()
        return build_labels(self.con, self.db.spec, t, kept, self.relations)


def _anchor_in(anchors: pa.Table, subset: pa.Table) -> pa.Array:
    """``bool[A]``: whether each anchor (entity_id, anchor_time) is a row of ``subset``."""

    def keys(t: pa.Table) -> pa.Array:
        us = pc.cast(pc.cast(t["anchor_time"], pa.timestamp("us")), pa.int64())
        return pc.binary_join_element_wise(t["entity_id"], pc.cast(us, pa.string()), "\x1f")

    return pc.is_in(keys(anchors), value_set=keys(subset).combine_chunks())
