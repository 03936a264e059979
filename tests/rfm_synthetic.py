"""Synthetic CELLS for the runtime and net tests: customers -> orders -> products.

Not a test module: a helper imported by tests/test_tokenize*.py, test_score*.py, test_nn*.py.
Every anchor has a hop-0 customer row, ``n_orders`` hop-1 order rows (some of them on the same
product) and hop-2 product rows; cells arrive ordered by anchor, then hop.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from rfm_runtime.schema import CELLS

T0 = dt.datetime(2024, 1, 1)


def make_cells(
    n_anchors: int, seed: int = 0, max_orders: int = 6, prefix: str = "c"
) -> tuple[pa.Table, np.ndarray]:
    """Cells of ``n_anchors`` customers and a binary label per customer.

    Returns:
        ``(cells, labels)``: CELLS table and ``int64[n_anchors]`` labels, 1 when the
        customer's order amounts sum above the median (learnable from the cells).
    """
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    totals = np.zeros(n_anchors)

    def cell(
        e: str,
        t: dt.datetime,
        table: str,
        key: str,
        parent: tuple | None,
        hop: int,
        column: str,
        stype: str,
        num: float | None = None,
        text: str | None = None,
        rel: float | None = None,
    ) -> None:
        rows.append(
            {
                "entity_id": e,
                "anchor_time": t,
                "table_name": table,
                "row_key": key,
                "parent_table": parent[0] if parent else None,
                "parent_key": parent[1] if parent else None,
                "hop": hop,
                "column_name": column,
                "stype": stype,
                "num_value": num,
                "text_value": text,
                "rel_days": rel,
            }
        )

    for a in range(n_anchors):
        e, t = f"{prefix}{a}", T0 + dt.timedelta(days=int(a % 3))
        cell(e, t, "customers", e, None, 0, "age", "numerical", float(rng.integers(18, 80)))
        cell(
            e,
            t,
            "customers",
            e,
            None,
            0,
            "segment",
            "categorical",
            text=str(rng.choice(["a", "b"])),
        )
        cell(e, t, "customers", e, None, 0, "active", "boolean", float(rng.integers(0, 2)))
        cell(e, t, "customers", e, None, 0, "signup", "timestamp", -float(rng.integers(1, 900)))
        orders = []
        for o in range(int(rng.integers(0, max_orders + 1))):
            key, rel = f"{e}-o{o}", -float(rng.uniform(0, 60))
            amount = float(rng.lognormal(3, 1))
            totals[a] += amount
            product = f"p{int(rng.integers(0, 4))}"
            orders.append((key, product))
            cell(e, t, "orders", key, ("customers", e), 1, "amount", "numerical", amount, rel=rel)
            cell(
                e,
                t,
                "orders",
                key,
                ("customers", e),
                1,
                "status",
                "categorical",
                text=str(rng.choice(["paid", "open", None])),
                rel=rel,
            )
            cell(
                e,
                t,
                "orders",
                key,
                ("customers", e),
                1,
                "note",
                "text",
                text="fast delivery",
                rel=rel,
            )
        for key, product in orders:
            cell(
                e,
                t,
                "products",
                product,
                ("orders", key),
                2,
                "price",
                "numerical",
                float(int(product[1:]) * 10 + 5),
            )
    labels = (totals > np.median(totals)).astype(np.int64)
    return pa.Table.from_pylist(rows, schema=CELLS), labels


def anchors_of(cells: pa.Table) -> list[tuple[str, dt.datetime]]:
    """Distinct anchors of a CELLS table in order of appearance."""
    seen = dict.fromkeys(
        zip(
            cells.column("entity_id").to_pylist(),
            cells.column("anchor_time").to_pylist(),
            strict=True,
        )
    )
    return list(seen)


def label_table(cells: pa.Table, labels: np.ndarray) -> pa.Table:
    """``entity_id, anchor_time, label`` for the anchors of ``cells``."""
    keys = anchors_of(cells)
    return pa.table(
        {
            "entity_id": [k[0] for k in keys],
            "anchor_time": pa.array([k[1] for k in keys], pa.timestamp("us")),
            "label": pa.array(labels.tolist(), pa.float64()),
        }
    )


def small_net_config():  # -> dbt_rfm.nn.NetConfig (torch imported lazily)
    """A tiny net for fast tests: d 32, 2 blocks, S 64, small hash tables."""
    from dbt_rfm.nn.config import NetConfig

    return NetConfig(
        d_model=32, n_blocks=2, n_heads=4, head_layers=1, seq_len=64,
        value_buckets=512, name_buckets=256, max_classes=8,
    )  # fmt: skip


def export_small(prefix, seed: int = 0):  # -> (encoder, head, (encoder path, head path))
    """Build a seeded tiny net and export it as an artifact at ``prefix``. The projections that
    start at zero (``NEUTRAL_PARAMS``) get small random weights, so every path is exercised."""
    import torch

    from dbt_rfm.nn.export import export_artifact
    from dbt_rfm.nn.train import NEUTRAL_PARAMS, build_net

    encoder, head = build_net(small_net_config(), seed=seed)
    with torch.no_grad():
        for name, param in [*encoder.named_parameters(), *head.named_parameters()]:
            if name.startswith(NEUTRAL_PARAMS):
                param.normal_(0.0, 0.1)
    encoder.eval()
    head.eval()
    return encoder, head, export_artifact(encoder, head, prefix)
