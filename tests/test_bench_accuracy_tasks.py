"""Benchmark task SQL on a tiny flights table: label windows and time-safe previous labels."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

from bench.accuracy.tasks import TASKS, DataBounds, Protocol, anchor_times

T = datetime(2013, 6, 1)


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create table planes as select * from (values ('P1'), ('P2')) v(tailnum)")
    con.execute(
        "create table flights (flight_id bigint, tailnum varchar, carrier varchar, "
        "flight_number bigint, scheduled_departure timestamp, dep_delay bigint, "
        "air_time bigint, dest varchar, cancelled boolean)"
    )
    rows = [
        # id, plane, sched, dep_delay, dest, cancelled
        (1, "P1", "2013-05-31 12:00", 60, "ATL", False),  # before t: not a label row
        (2, "P1", "2013-06-01 00:00", 60, "ATL", False),  # exactly t: excluded (t, t+7d]
        (3, "P1", "2013-06-03 09:00", 5, "ORD", False),
        (4, "P1", "2013-06-08 00:00", 20, "BOS", False),  # exactly t+7d: included
        (5, "P2", "2013-06-02 08:00", None, "ORD", True),  # cancelled counts as delayed
        (6, "P2", "2013-06-08 00:00:01", 99, "ORD", False),  # after the window
    ]
    con.executemany(
        "insert into flights values (?, ?, 'AA', 1, ?::timestamp, ?, 100, ?, ?)",
        [(i, p, s, d, dest, c) for i, p, s, d, dest, c in rows],
    )
    return con


ANCHORS = (
    "(select * from (values ('P1', timestamp '2013-06-01'), ('P2', timestamp '2013-06-01'), "
    "('P3', timestamp '2013-06-01')) v(entity_id, anchor_time))"
)


def _labels(task: str, anchors: str = ANCHORS) -> dict[str, object]:
    sql = TASKS[task].label_sql(anchors)
    return {e: lab for e, _, lab in _con().sql(sql).fetchall()}


def test_binary_label_uses_the_half_open_window() -> None:
    assert _labels("plane_delay_7d") == {"P1": True, "P2": True, "P3": False}
    # Without flight 4 (at t + 7d exactly) P1 has only flight 3 (5 min late): negative.
    con = _con()
    con.execute("delete from flights where flight_id = 4")
    rows = con.sql(TASKS["plane_delay_7d"].label_sql(ANCHORS)).fetchall()
    assert {e: lab for e, _, lab in rows}["P1"] is False


def test_count_and_ranking_labels() -> None:
    counts = _labels("plane_flights_30d")
    assert counts == {"P1": 2.0, "P2": 2.0, "P3": 0.0}
    assert _labels("plane_next_dests_7d") == {"P1": ["BOS", "ORD"], "P2": ["ORD"], "P3": []}


def test_previous_label_only_uses_rows_up_to_the_anchor() -> None:
    sql = TASKS["plane_delay_7d"].previous_label_sql(ANCHORS)
    prev = {e: (t, lab) for e, t, lab in _con().sql(sql).fetchall()}
    # Window (t - 7d, t]: flight 1 (60 min late) and flight 2 (at t exactly, 60 min late).
    assert prev["P1"] == (T, True)
    assert prev["P2"] == (T, False)


def test_anchor_times_keep_label_windows_inside_their_split() -> None:
    protocol = Protocol()
    bounds = DataBounds(datetime(2013, 1, 1, 10), datetime(2014, 1, 1, 4))
    for window in (timedelta(days=7), timedelta(days=30)):
        train = anchor_times("train", window, protocol, bounds)
        val = anchor_times("val", window, protocol, bounds)
        test = anchor_times("test", window, protocol, bounds)
        assert max(train) + window <= protocol.val_time
        assert min(train) - protocol.lookback >= bounds.start
        assert min(val) == protocol.val_time and max(val) + window <= protocol.test_time
        assert min(test) == protocol.test_time and max(test) + window <= bounds.end
        # training anchors on the weekdays (and times of day) of both query splits, no other
        week = timedelta(days=7)
        for split in (val, test):
            phase = [t for t in train if (split[0] - t) % week == timedelta(0)]
            assert len(phase) == protocol.max_train_times
            assert max(phase) + window <= protocol.val_time < max(phase) + window + week
        assert len(train) == 2 * protocol.max_train_times
    assert len(anchor_times("test", timedelta(days=30), protocol, bounds)) == 1


def test_flight_anchor_is_its_scheduled_departure() -> None:
    protocol = Protocol(static_sizes=(10, 10, 10))
    con = _con()
    bounds = DataBounds(datetime(2013, 1, 1), datetime(2014, 1, 1))
    rows = con.sql(TASKS["flight_delayed_15"].anchors_sql("train", protocol, bounds)).fetchall()
    times = dict(con.sql("select flight_id::varchar, scheduled_departure from flights").fetchall())
    assert len(rows) == 6
    assert all(times[e] == t for e, t in rows)


def test_flight_previous_label_waits_for_the_outcome() -> None:
    # Flight 6 departs 1 s after flight 4 (20 min late, so positive) was scheduled: flight 4's
    # outcome is not known yet, so the latest known same-number flight is 3 (5 min late).
    anchors = (
        "(select * from (values ('6', timestamp '2013-06-08 00:00:01'), "
        "('3', timestamp '2013-06-03 09:00')) v(entity_id, anchor_time))"
    )
    rows = _con().sql(TASKS["flight_delayed_15"].previous_label_sql(anchors)).fetchall()
    prev = {e: lab for e, _, lab in rows}
    assert prev == {"6": False, "3": True}  # flight 3 sees flight 2 (cancelled 5 is later)
