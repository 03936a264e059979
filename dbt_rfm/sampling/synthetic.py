"""A small random relational graph with every shape the samplers must handle.

Tables (``staff`` is the hub):

* ``staff(staff_id)``: self-link ``manager_id -> staff``, ``dept_id -> depts``; time ``hired_at``.
* ``depts(dept_id)``: static; ``head_id -> staff`` closes a cycle staff -> depts -> staff.
* ``projects(code, region)``: composite key; ``lead_id -> staff``; time ``created_on`` (a date).
* ``tasks(task_id)``: two links to one parent (``owner_id``, ``reviewer_id -> staff``) and a
  composite link ``(code, region) -> projects``; time ``done_at`` drawn from few values (ties);
  ``hours`` is known only at ``reviewed_at`` (an availability time, often after ``done_at``).

Keys may dangle or be null, and some times are null, as in real data. Used by the sampler tests
(SQL against in-process) and the leakage property tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from dbt_rfm.spec import ColumnSpec, GraphSpec, LinkSpec, TableSpec

__all__ = ["SyntheticGraph", "synthetic_graph", "synthetic_spec"]

EPOCH = dt.datetime(2024, 1, 1)


def synthetic_spec(schema: str = "main") -> GraphSpec:
    """The GraphSpec of :func:`synthetic_graph` tables living in ``schema``."""

    def col(name: str, data_type: str, stype: str, available_at: str | None = None) -> ColumnSpec:
        return ColumnSpec(name, data_type, stype, available_at)

    tables = (
        TableSpec(
            "staff",
            f"{schema}.staff",
            ("staff_id",),
            "hired_at",
            (
                col("staff_id", "bigint", "key"),
                col("manager_id", "bigint", "key"),
                col("dept_id", "varchar", "key"),
                col("hired_at", "timestamp", "timestamp"),
                col("salary", "double", "numerical"),
                col("title", "varchar", "categorical"),
            ),
        ),
        TableSpec(
            "depts",
            f"{schema}.depts",
            ("dept_id",),
            None,
            (
                col("dept_id", "varchar", "key"),
                col("head_id", "bigint", "key"),
                col("floor", "integer", "numerical"),
                col("remote", "boolean", "boolean"),
            ),
        ),
        TableSpec(
            "projects",
            f"{schema}.projects",
            ("code", "region"),
            "created_on",
            (
                col("code", "varchar", "key"),
                col("region", "varchar", "key"),
                col("lead_id", "bigint", "key"),
                col("created_on", "date", "timestamp"),
                col("budget", "bigint", "numerical"),
                col("summary", "varchar", "text"),
            ),
        ),
        TableSpec(
            "tasks",
            f"{schema}.tasks",
            ("task_id",),
            "done_at",
            (
                col("task_id", "bigint", "key"),
                col("owner_id", "bigint", "key"),
                col("reviewer_id", "bigint", "key"),
                col("code", "varchar", "key"),
                col("region", "varchar", "key"),
                col("done_at", "timestamp", "timestamp"),
                col("hours", "double", "numerical", "reviewed_at"),
                col("urgent", "boolean", "boolean"),
                col("due_at", "timestamp", "timestamp"),
                col("reviewed_at", "timestamp", "timestamp"),
            ),
        ),
    )
    links = (
        LinkSpec("staff", ("manager_id",), "staff", ("staff_id",)),
        LinkSpec("staff", ("dept_id",), "depts", ("dept_id",)),
        LinkSpec("depts", ("head_id",), "staff", ("staff_id",)),
        LinkSpec("projects", ("lead_id",), "staff", ("staff_id",)),
        LinkSpec("tasks", ("owner_id",), "staff", ("staff_id",)),
        LinkSpec("tasks", ("reviewer_id",), "staff", ("staff_id",)),
        LinkSpec("tasks", ("code", "region"), "projects", ("code", "region")),
    )
    return GraphSpec(tables=tables, links=links)


@dataclass(frozen=True)
class SyntheticGraph:
    """Tables by name (Arrow) plus their spec."""

    spec: GraphSpec
    tables: dict[str, pa.Table]


def _times(
    rng: np.random.Generator, n: int, days: int, distinct: int, null_rate: float
) -> pa.Array:
    """``timestamp[us][n]`` from ``distinct`` possible values within ``days`` (ties on purpose)."""
    grid = np.sort(rng.choice(days * 24, size=distinct, replace=False))
    us = grid[rng.integers(0, distinct, n)].astype(np.int64) * 3_600_000_000
    base = int((EPOCH - dt.datetime(1970, 1, 1)).total_seconds()) * 1_000_000
    mask = rng.random(n) < null_rate
    return pa.array(us + base, pa.int64(), mask=mask).cast(pa.timestamp("us"))


def _later(rng: np.random.Generator, times: pa.Array, max_hours: int, null_rate: float) -> pa.Array:
    """``times`` plus 0 to ``max_hours`` hours; a ``null_rate`` share (and null times) null."""
    n = len(times)
    us = times.cast(pa.int64()).fill_null(0).to_numpy()
    us = us + rng.integers(0, max_hours + 1, n) * 3_600_000_000
    mask = np.asarray(times.is_null()) | (rng.random(n) < null_rate)
    return pa.array(us, pa.int64(), mask=mask).cast(pa.timestamp("us"))


def _fk(
    rng: np.random.Generator, keys: np.ndarray, n: int, dangle: float, null: float
) -> list[int | str | None]:
    """Foreign keys into ``keys``: a ``null`` share of nulls, a ``dangle`` share dangling."""
    out: list[int | str | None] = []
    for _ in range(n):
        u = rng.random()
        if u < null:
            out.append(None)
        elif u < null + dangle:
            out.append(999_999 if keys.dtype.kind == "i" else "ghost")
        else:
            out.append(keys[rng.integers(0, len(keys))].item())
    return out


def synthetic_graph(
    seed: int, n_staff: int = 30, n_tasks: int = 200, days: int = 60
) -> SyntheticGraph:
    """Random tables for :func:`synthetic_spec` (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    staff_ids = np.arange(1, n_staff + 1, dtype=np.int64)
    dept_ids = np.array([f"d{i}" for i in range(max(2, n_staff // 8))])
    regions = np.array(["north", "south"])
    codes = np.array([f"p{i}" for i in range(max(2, n_staff // 4))])
    proj = [(c, r) for c in codes for r in regions if rng.random() < 0.7] or [(codes[0], "north")]
    staff = pa.table(
        {
            "staff_id": staff_ids,
            "manager_id": pa.array(_fk(rng, staff_ids, n_staff, 0.05, 0.1), pa.int64()),
            "dept_id": pa.array(_fk(rng, dept_ids, n_staff, 0.05, 0.05), pa.string()),
            "hired_at": _times(rng, n_staff, days, max(3, n_staff // 3), 0.05),
            "salary": pa.array(np.round(rng.normal(50, 10, n_staff), 2)),
            "title": pa.array(
                [["eng", "pm", "ops", None][i] for i in rng.integers(0, 4, n_staff)], pa.string()
            ),
        }
    )
    depts = pa.table(
        {
            "dept_id": dept_ids,
            "head_id": pa.array(_fk(rng, staff_ids, len(dept_ids), 0.1, 0.1), pa.int64()),
            "floor": pa.array(rng.integers(1, 9, len(dept_ids)), pa.int32()),
            "remote": pa.array(rng.random(len(dept_ids)) < 0.5),
        }
    )
    created = _times(rng, len(proj), days, max(2, len(proj) // 2), 0.0).cast(pa.date32())
    projects = pa.table(
        {
            "code": pa.array([p[0] for p in proj], pa.string()),
            "region": pa.array([p[1] for p in proj], pa.string()),
            "lead_id": pa.array(_fk(rng, staff_ids, len(proj), 0.05, 0.05), pa.int64()),
            "created_on": created,
            "budget": pa.array(rng.integers(0, 10_000, len(proj)), pa.int64()),
            "summary": pa.array([f"project {p[0]} in {p[1]}" for p in proj], pa.string()),
        }
    )
    pick = rng.integers(0, len(proj), n_tasks)
    dangling = rng.random(n_tasks) < 0.05
    done = _times(rng, n_tasks, days, max(4, n_tasks // 6), 0.03)
    tasks = pa.table(
        {
            "task_id": np.arange(100, 100 + n_tasks, dtype=np.int64),
            "owner_id": pa.array(_fk(rng, staff_ids, n_tasks, 0.03, 0.02), pa.int64()),
            "reviewer_id": pa.array(_fk(rng, staff_ids, n_tasks, 0.03, 0.3), pa.int64()),
            "code": pa.array([proj[i][0] for i in pick], pa.string()),
            "region": pa.array(
                [
                    None if d and rng.random() < 0.5 else ("east" if d else proj[i][1])
                    for i, d in zip(pick, dangling, strict=True)
                ],
                pa.string(),
            ),
            "done_at": done,
            "hours": pa.array(
                np.where(rng.random(n_tasks) < 0.1, np.nan, rng.gamma(2, 3, n_tasks))
            ),
            "urgent": pa.array([None if u < 0.1 else bool(u < 0.4) for u in rng.random(n_tasks)]),
            "due_at": _times(rng, n_tasks, days + 30, 20, 0.1),
            "reviewed_at": _later(rng, done, max_hours=24 * 10, null_rate=0.1),
        }
    )
    tables = {"staff": staff, "depts": depts, "projects": projects, "tasks": tasks}
    return SyntheticGraph(synthetic_spec(), tables)
