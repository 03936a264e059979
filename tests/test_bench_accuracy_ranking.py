"""The ranking arm's candidate pairs (time-aware) and its top-k assembly."""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from bench.accuracy.ranking import PAIR_SQL, _rank
from dbt_rfm.aggregates import ANCHORS, register_anchors

FLIGHTS = [
    ("P1", "2013-05-30 10:00", "ATL"),
    ("P1", "2013-05-31 10:00", "ATL"),
    ("P1", "2013-04-01 10:00", "BOS"),  # 61 days before: in 90d, not in 30d
    ("P1", "2013-06-01 00:00", "ORD"),  # exactly at t: known
    ("P1", "2013-06-02 10:00", "SFO"),  # future: never a feature or a plane candidate
    ("P2", "2013-05-31 12:00", "ATL"),
]


def _pairs(flights: list[tuple[str, str, str]]) -> dict[str, tuple]:
    con = duckdb.connect()
    con.execute(
        "create table flights (tailnum varchar, scheduled_departure timestamp, dest varchar)"
    )
    con.executemany("insert into flights values (?, ?::timestamp, ?)", flights)
    anchors = pa.table(
        {
            "entity_id": pa.array(["P1"], pa.string()),
            "anchor_time": pa.array([datetime(2013, 6, 1)], pa.timestamp("us")),
        }
    )
    register_anchors(con, anchors)
    rows = con.sql(PAIR_SQL).fetchall()
    con.unregister(ANCHORS)
    return {r[1]: r[2:] for r in rows}


def test_pair_features_hand_computed() -> None:
    pairs = _pairs(FLIGHTS)
    # n_7d, n_30d, n_90d, days_since, dest_7d (all planes), plane_30d
    assert pairs["ATL"] == pytest.approx((2.0, 2.0, 2.0, 1 - 10 / 24, 3.0, 3.0))
    assert pairs["BOS"][:3] == (0.0, 0.0, 1.0)
    assert pairs["ORD"][3] == 0.0
    assert "SFO" not in pairs


def test_future_flights_do_not_change_pairs() -> None:
    later = [("P1", "2013-06-01 00:00:01", "ATL"), ("P2", "2013-06-05 00:00", "MIA")]
    assert _pairs(FLIGHTS + later) == _pairs(FLIGHTS)


def test_rank_orders_by_score_and_pads_with_popular() -> None:
    idx = np.array([0, 0, 0, 1])
    dest = np.array(["A", "B", "C", "D"], dtype=object)
    score = np.array([0.1, 0.9, 0.5, 0.3])
    out = _rank(idx, dest, score, slice(0, 3), 3, ["X", "B", "Y"])
    assert out == [["B", "C", "A"], ["D", "X", "B"], ["X", "B", "Y"]]
