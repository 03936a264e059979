"""Arrow schemas for every arrow in the data flow, defined once.

Identity conventions shared by SQL and Python:

* An *anchor* is ``(entity_id, anchor_time)``. ``entity_id`` is the entity's primary key cast
  to text (composite keys joined with ``|``); ``anchor_time`` is a naive UTC timestamp.
* A *node* of a sampled subgraph is ``(table_name, row_key)`` within one anchor, where
  ``row_key`` is that row's primary key cast to text the same way. Hop 0 is the entity row.
* Relative times are in days, ``row time - anchor_time`` (so never positive for sampled rows).
"""

from __future__ import annotations

import pyarrow as pa

#: Separator for composite keys rendered as text (SQL: ``concat_ws('|', ...)``).
KEY_SEPARATOR = "|"

#: Anchor tables (context and query anchors). Labels are added by :data:`LABEL_FIELDS`.
ANCHORS = pa.schema(
    [
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("anchor_time", pa.timestamp("us"), nullable=False),
    ]
)

#: Output of both samplers: one row per sampled node, per anchor.
SUBGRAPH = pa.schema(
    [
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("anchor_time", pa.timestamp("us"), nullable=False),
        pa.field("table_name", pa.string(), nullable=False),
        pa.field("row_key", pa.string(), nullable=False),
        pa.field("hop", pa.int32(), nullable=False),
        pa.field("parent_table", pa.string()),  # node this one was reached from; null at hop 0
        pa.field("parent_key", pa.string()),
    ]
)

#: One row per cell (sampled row x value column). Ordered by anchor, then hop, table, row_key,
#: column position; the cells of one anchor are contiguous.
CELLS = pa.schema(
    [
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("anchor_time", pa.timestamp("us"), nullable=False),
        pa.field("table_name", pa.string(), nullable=False),
        pa.field("row_key", pa.string(), nullable=False),
        pa.field("parent_table", pa.string()),
        pa.field("parent_key", pa.string()),
        pa.field("hop", pa.int32(), nullable=False),
        pa.field("column_name", pa.string(), nullable=False),
        pa.field("stype", pa.string(), nullable=False),
        # numerical: the value; boolean: 0/1; timestamp: days relative to anchor_time.
        pa.field("num_value", pa.float64()),
        # categorical and text values.
        pa.field("text_value", pa.string()),
        # the row's time relative to anchor_time, in days; null for rows of static tables.
        pa.field("rel_days", pa.float64()),
    ]
)

#: A ranking target's item history (``rfm_item_history`` without ``target_name``): per anchor and
#: item, the rows of the aggregated model that linked the entity to the item up to the anchor
#: time, counted over the last 1, 4 and 13 label windows and over all time, and the number of
#: label windows since the last one. Items the entity never linked to have no row.
ITEM_HISTORY = pa.schema(
    [
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("anchor_time", pa.timestamp("us"), nullable=False),
        pa.field("item", pa.string(), nullable=False),
        pa.field("n_window_1", pa.int64(), nullable=False),
        pa.field("n_window_4", pa.int64(), nullable=False),
        pa.field("n_window_13", pa.int64(), nullable=False),
        pa.field("n_all", pa.int64(), nullable=False),
        pa.field("windows_since_last", pa.float64(), nullable=False),
    ]
)

#: A regression target's history (``rfm_target_history`` without ``target_name``): per anchor,
#: the target's own aggregate (COUNT or SUM) over the last 1, 4 and 13 label windows up to the
#: anchor time, per window.
TARGET_HISTORY = pa.schema(
    [
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("anchor_time", pa.timestamp("us"), nullable=False),
        pa.field("per_window_1", pa.float64(), nullable=False),
        pa.field("per_window_4", pa.float64(), nullable=False),
        pa.field("per_window_13", pa.float64(), nullable=False),
    ]
)

#: A static binary target's sibling history (``rfm_sibling_history`` without ``target_name``):
#: per anchor, foreign key of the entity model (``link``: its columns, comma-separated) and
#: window, the other rows sharing that parent with a row time in the window before the anchor:
#: those whose label was known before it (``n_known``, the labels' ``value_sum``) and those not
#: yet known; the same for each outcome column (``column_name``) of the entity model.
SIBLING_HISTORY = pa.schema(
    [
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("anchor_time", pa.timestamp("us"), nullable=False),
        pa.field("link", pa.string(), nullable=False),
        pa.field("window_length", pa.int64(), nullable=False),
        # empty: the target's label; else an outcome column whose siblings' mean is read (0017)
        pa.field("column_name", pa.string(), nullable=False),
        pa.field("n_known", pa.int64(), nullable=False),
        pa.field("value_sum", pa.float64(), nullable=False),
        pa.field("n_pending", pa.int64(), nullable=False),
    ]
)

#: Predictions table written back to the warehouse.
PREDICTIONS = pa.schema(
    [
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("anchor_time", pa.timestamp("us"), nullable=False),
        pa.field("target_name", pa.string(), nullable=False),
        # binary: 1.0 when probability >= 0.5; regression: the value; otherwise null.
        pa.field("prediction", pa.float64()),
        # binary: P(label = 1); otherwise null.
        pa.field("probability", pa.float64()),
        # multiclass: most likely class; ranking: top-ranked item.
        pa.field("predicted_class", pa.string()),
        # multiclass: every class with its probability (sums to 1); ranking: top k items.
        pa.field(
            "class_scores",
            pa.list_(pa.struct([pa.field("class", pa.string()), pa.field("score", pa.float64())])),
        ),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("scored_at", pa.timestamp("us"), nullable=False),
        pa.field("dbt_invocation_id", pa.string()),
    ]
)


def embeddings_schema(dim: int) -> pa.Schema:
    """Embeddings table: ``embedding`` is ``float32[dim]`` (DuckDB ``FLOAT[dim]``)."""
    return pa.schema(
        [
            pa.field("entity_id", pa.string(), nullable=False),
            pa.field("anchor_time", pa.timestamp("us"), nullable=False),
            pa.field("target_name", pa.string(), nullable=False),
            pa.field("embedding", pa.list_(pa.float32(), dim)),
            pa.field("model_version", pa.string(), nullable=False),
        ]
    )
