"""Benchmark tasks as plain SQL over the demo DuckDB file (RelBench-style temporal splits).

Every task yields, per split, an anchors+labels table ``(entity_id VARCHAR, anchor_time
TIMESTAMP, label)``; every arm sees exactly these rows. A task is two SQL builders:

* :meth:`Task.anchors_sql` -- the ``(entity_id, anchor_time)`` rows of a split;
* :meth:`Task.label_sql` -- labels for *any* ``(entity_id, anchor_time)`` relation, using only
  rows in ``(anchor_time, anchor_time + window]``. Arms use it to compute time-safe previous
  labels; the project's label macros can be checked against it.

Protocol: validation anchors from ``val_time``, test anchors from ``test_time``; training anchor
times step back weekly from ``val_time`` and from ``test_time`` (two weekdays, so that each
query split has training anchors of its own weekday and time of day, as the dbt spine steps
back from the scoring time; decision 0009), keeping those whose label window ends by
``val_time``; validation label windows end by ``test_time``, and test windows end inside the
data. Times are naive UTC, as in the demo models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa

from dbt_rfm.errors import RfmError, did_you_mean

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Protocol:
    """Split times and sizes shared by all tasks.

    Attributes:
        val_time: first validation anchor time.
        test_time: first test anchor time.
        step: spacing of anchor times within a split.
        lookback: an entity is active at ``t`` when it has a row in ``(t - lookback, t]``;
            training anchor times start ``lookback`` after the first row.
        max_train_times: at most this many training anchor times per query split's weekday
            (newest first), for runtime.
        static_sizes: (train, val, test) anchors sampled for static (per-row) tasks.
        seed: sampling seed for static tasks.
    """

    val_time: datetime = datetime(2013, 11, 1)
    test_time: datetime = datetime(2013, 12, 1)
    step: timedelta = timedelta(days=7)
    lookback: timedelta = timedelta(days=30)
    max_train_times: int = 20
    static_sizes: tuple[int, int, int] = (20_000, 5_000, 5_000)
    seed: int = 0


@dataclass(frozen=True)
class DataBounds:
    """First and last row time of the event table (``flights.scheduled_departure``)."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, con: duckdb.DuckDBPyConnection) -> DataBounds:
        """Read the bounds from the ``flights`` table."""
        row = con.sql(
            "select min(scheduled_departure) as lo, max(scheduled_departure) as hi from flights"
        ).fetchall()[0]
        return cls(start=row[0], end=row[1])


@dataclass(frozen=True)
class Task:
    """One predictive task.

    Attributes:
        name: task name, e.g. ``plane_delay_7d``.
        kind: ``binary`` (label BOOLEAN), ``regression`` (DOUBLE) or ``ranking`` (VARCHAR[]).
        metric: ``auroc``, ``mae`` or ``map@5``.
        entity_table: the dbt model whose rows are the entities (``planes`` or ``flights``).
        entity_key: its primary key; ``entity_id`` is this key cast to VARCHAR.
        window: label window length, or None for a static task (one anchor per row, at its
            row time).
        description: one line for the report.
        max_context: context anchors of the foundation-model arms, as the demo declares the
            target (``anchors.max_context``).
    """

    name: str
    kind: str
    metric: str
    entity_table: str
    entity_key: str
    window: timedelta | None
    description: str
    max_context: int = 2000

    # -- SQL -----------------------------------------------------------------------------

    def anchors_sql(self, split: str, protocol: Protocol, bounds: DataBounds) -> str:
        """SELECT of ``(entity_id VARCHAR, anchor_time TIMESTAMP)`` for one split."""
        if split not in SPLITS:
            raise RfmError(f"unknown split '{split}'{did_you_mean(split, SPLITS)}")
        if self.window is None:
            return _flight_anchors_sql(split, protocol, bounds)
        times = anchor_times(split, self.window, protocol, bounds)
        literal = ", ".join(f"timestamp '{t:%Y-%m-%d %H:%M:%S}'" for t in times)
        days = protocol.lookback.days
        # Active planes: a plane row with a flight in (t - lookback, t].
        return f"""
            with times as (select unnest([{literal}]::timestamp[]) as anchor_time)
            select distinct p.tailnum::varchar as entity_id, t.anchor_time
            from times as t
            join flights as f
              on f.scheduled_departure > t.anchor_time - interval {days} day
             and f.scheduled_departure <= t.anchor_time
            join planes as p on p.tailnum = f.tailnum
        """

    def label_sql(self, anchors: str) -> str:
        """SELECT of ``(entity_id, anchor_time, label)``: one row per row of ``anchors``.

        Args:
            anchors: a relation (table name or parenthesised SELECT) with columns
                ``entity_id`` and ``anchor_time``.
        """
        if self.window is None:
            return f"""
                select a.entity_id, a.anchor_time,
                       coalesce(f.cancelled or f.dep_delay > 15, false) as label
                from {anchors} as a
                left join flights as f on f.flight_id::varchar = a.entity_id
            """
        days = self.window.days
        if self.kind == "ranking":  # destinations, most flown first (ties by code)
            return f"""
                with visits as (
                    select a.entity_id, a.anchor_time, f.dest, count(*) as n
                    from {anchors} as a
                    join flights as f
                      on f.tailnum = a.entity_id
                     and f.scheduled_departure > a.anchor_time
                     and f.scheduled_departure <= a.anchor_time + interval {days} day
                    where f.dest is not null
                    group by all
                )
                select a.entity_id, a.anchor_time,
                       coalesce(list(v.dest order by v.n desc, v.dest)
                                filter (v.dest is not null), []::varchar[]) as label
                from {anchors} as a
                left join visits as v
                  on v.entity_id = a.entity_id and v.anchor_time = a.anchor_time
                group by all
            """
        agg = {
            "plane_delay_7d": "coalesce(bool_or(f.cancelled or f.dep_delay > 15), false)",
            "plane_flights_30d": "count(f.flight_id)::double",
        }[self.name]
        return f"""
            select a.entity_id, a.anchor_time, {agg} as label
            from {anchors} as a
            left join flights as f
              on f.tailnum = a.entity_id
             and f.scheduled_departure > a.anchor_time
             and f.scheduled_departure <= a.anchor_time + interval {days} day
            group by all
        """

    def previous_label_sql(self, anchors: str) -> str:
        """SELECT of ``(entity_id, anchor_time, label)``: the entity's latest label known at
        ``anchor_time`` (NULL when there is none).

        Temporal tasks: the label at ``anchor_time - window``, whose window ends at
        ``anchor_time``. The static flight task: the label of the latest earlier flight with the
        same carrier and flight number whose outcome was known before ``anchor_time`` (at its
        departure, :data:`bench.accuracy.graph.FLIGHT_DEPARTED_AT`).
        """
        if self.window is not None:
            days = self.window.days
            shifted = (
                f"(select entity_id, anchor_time - interval {days} day as anchor_time "
                f"from {anchors})"
            )
            return f"""
                select p.entity_id, p.anchor_time + interval {days} day as anchor_time, p.label
                from ({self.label_sql(shifted)}) as p
            """
        from bench.accuracy.graph import FLIGHT_DEPARTED_AT

        return f"""
            with me as (
                select a.entity_id, a.anchor_time, f.carrier, f.flight_number
                from {anchors} as a
                join flights as f on f.flight_id::varchar = a.entity_id
            ),
            known as (
                select f.carrier, f.flight_number, {FLIGHT_DEPARTED_AT.format(t="f")} as known_at,
                       coalesce(f.cancelled or f.dep_delay > 15, false) as label
                from flights as f
            )
            select me.entity_id, me.anchor_time,
                   arg_max(k.label, k.known_at) as label
            from me
            left join known as k
              on k.carrier = me.carrier and k.flight_number = me.flight_number
             and k.known_at <= me.anchor_time
            group by all
        """

    def split_sql(self, split: str, protocol: Protocol, bounds: DataBounds) -> str:
        """SELECT of the anchors+labels table of one split, ordered by (anchor_time, entity_id)."""
        anchors = f"({self.anchors_sql(split, protocol, bounds)})"
        body = self.label_sql(anchors)
        if self.kind == "ranking":  # only entities with something to rank (RelBench's rule)
            body = f"select * from ({body}) where len(label) > 0"
        return f"select * from ({body}) order by anchor_time, entity_id"


def anchor_times(
    split: str, window: timedelta, protocol: Protocol, bounds: DataBounds
) -> list[datetime]:
    """Anchor times of one split of a temporal task, oldest first.

    train: for each of ``val_time`` and ``test_time``, ``origin - k * step`` (k >= 1) with
    ``t + window <= val_time``, while ``t - lookback >= bounds.start`` (at most
    ``max_train_times`` each); val: ``val_time + k * step`` while ``t + window <= test_time``;
    test: ``test_time + k * step`` while ``t + window <= bounds.end``.
    """
    out: list[datetime] = []
    if split == "train":
        times: set[datetime] = set()
        for origin in (protocol.val_time, protocol.test_time):
            t, n = origin - protocol.step, 0
            while t - protocol.lookback >= bounds.start and n < protocol.max_train_times:
                if t + window <= protocol.val_time:
                    times.add(t)
                    n += 1
                t -= protocol.step
        return sorted(times)
    start, stop = (
        (protocol.val_time, protocol.test_time)
        if split == "val"
        else (protocol.test_time, bounds.end)
    )
    t = start
    while t + window <= stop:
        out.append(t)
        t += protocol.step
    return out


def _flight_anchors_sql(split: str, protocol: Protocol, bounds: DataBounds) -> str:
    """Sampled flights of one split; anchor_time is the scheduled departure.

    A flight's outcome is known within a day of its scheduled departure, so training flights
    depart at least a day before ``val_time`` and validation flights a day before ``test_time``.
    """
    n = dict(zip(SPLITS, protocol.static_sizes, strict=True))[split]
    lo, hi = {
        "train": (bounds.start + protocol.lookback, protocol.val_time - timedelta(days=1)),
        "val": (protocol.val_time, protocol.test_time - timedelta(days=1)),
        "test": (protocol.test_time, bounds.end),
    }[split]
    return f"""
        select flight_id::varchar as entity_id, scheduled_departure as anchor_time
        from flights
        where scheduled_departure >= timestamp '{lo:%Y-%m-%d %H:%M:%S}'
          and scheduled_departure <= timestamp '{hi:%Y-%m-%d %H:%M:%S}'
        order by md5(flight_id::varchar || ':{protocol.seed}')
        limit {n}
    """


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            "plane_delay_7d",
            "binary",
            "auroc",
            "planes",
            "tailnum",
            timedelta(days=7),
            "plane active in the last 30 days: any flight in (t, t+7d] delayed >15 min "
            "or cancelled",
            max_context=20_000,  # its binary readout fits on them, as flight_delayed_15's
        ),
        Task(
            "plane_flights_30d",
            "regression",
            "mae",
            "planes",
            "tailnum",
            timedelta(days=30),
            "plane active in the last 30 days: number of scheduled flights in (t, t+30d]",
        ),
        Task(
            "flight_delayed_15",
            "binary",
            "auroc",
            "flights",
            "flight_id",
            None,
            "flight departs >15 min late or is cancelled, from what is known before its "
            "scheduled departure",
            max_context=20_000,  # every training anchor: the sibling readout fits on them
        ),
        Task(
            "plane_next_dests_7d",
            "ranking",
            "map@5",
            "planes",
            "tailnum",
            timedelta(days=7),
            "plane active in the last 30 days: destinations it flies to in (t, t+7d], MAP@5",
        ),
    )
}


def get_task(name: str) -> Task:
    """Return the task called ``name`` or raise an RfmError suggesting the closest one."""
    if name not in TASKS:
        raise RfmError(f"unknown task '{name}'{did_you_mean(name, TASKS)}; tasks: {list(TASKS)}")
    return TASKS[name]


@dataclass(frozen=True)
class TaskSplits:
    """Anchors and labels of one task: ``entity_id string, anchor_time timestamp[us], label``.

    Row order is fixed (anchor_time, entity_id); arms return predictions in this order.
    """

    task: Task
    train: pa.Table
    val: pa.Table
    test: pa.Table

    def split(self, name: str) -> pa.Table:
        """The table of split ``name`` (``train``, ``val`` or ``test``)."""
        if name not in SPLITS:
            raise RfmError(f"unknown split '{name}'{did_you_mean(name, SPLITS)}")
        table: pa.Table = getattr(self, name)
        return table

    def sizes(self) -> dict[str, int]:
        """Rows per split."""
        return {s: self.split(s).num_rows for s in SPLITS}


def build_splits(
    con: duckdb.DuckDBPyConnection, task: Task, protocol: Protocol | None = None
) -> TaskSplits:
    """Run the task's SQL and return its three splits as Arrow tables."""
    protocol = protocol or Protocol()
    bounds = DataBounds.of(con)
    tables = {s: con.sql(task.split_sql(s, protocol, bounds)).to_arrow_table() for s in SPLITS}
    for s, t in tables.items():
        if t.num_rows == 0:
            raise RfmError(f"task '{task.name}': split '{s}' has no anchors")
    return TaskSplits(task=task, **tables)
