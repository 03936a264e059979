"""rfm_anchors / rfm_labels built by dbt on the demo project, checked against independent
computations (numpy over the raw tables) and against the Python label SQL.

Runs dbt through dbtRunner on a temporary copy of integration_tests/ with its own DuckDB file,
target and log folders, building only ``+rfm_labels``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
import yaml

from dbt_rfm.labels import build_history, build_labels
from dbt_rfm.spec import GraphSpec
from dbt_rfm.targets import find_target, targets_from_manifest

REPO = Path(__file__).resolve().parents[1]
SPINE_START = datetime(2013, 2, 1)
#: anchors.max_context of the demo's targets
MAX_CONTEXT = {
    "plane_delay_7d": 20_000,
    "plane_flights_30d": 2000,
    "plane_next_dests_7d": 2000,
    "flight_delayed_15": 20_000,
}
#: plane_flights_30d's anchors in the demo (the ranking target's alias them)
WEEKLY = "anchors: &weekly {spine: *weekly_spine, max_context: 2000}\n"


class Project:
    """A temporary copy of the demo dbt project."""

    def __init__(self, root: Path) -> None:
        self.path = root / "project"
        shutil.copytree(
            REPO / "integration_tests",
            self.path,
            ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb*"),
        )
        (self.path / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
        (self.path / "dbt_packages").mkdir()
        (self.path / "dbt_packages" / "dbt_rfm").symlink_to(REPO)
        self.db = root / "demo.duckdb"
        self.target = root / "target"

    def dbt(self, *args: str) -> Any:
        from dbt.cli.main import dbtRunner

        old = os.environ.get("RFM_DUCKDB_PATH")
        os.environ["RFM_DUCKDB_PATH"] = str(self.db)
        try:
            return dbtRunner().invoke(
                [
                    *args,
                    "--project-dir",
                    str(self.path),
                    "--profiles-dir",
                    str(self.path),
                    "--target-path",
                    str(self.target),
                    "--log-path",
                    str(self.path / "logs"),
                    "--quiet",
                ]
            )
        finally:
            if old is None:
                del os.environ["RFM_DUCKDB_PATH"]
            else:
                os.environ["RFM_DUCKDB_PATH"] = old

    def query(self, sql: str) -> Any:
        with duckdb.connect(str(self.db)) as con:
            return con.sql(sql).to_arrow_table()


#: More target forms, added to the copy's planes.yml for the macro / Python agreement test.
EXTRA_TARGETS = """
            - name: x_first_dest
              task: multiclass
              aggregate: {fn: first, table: flights, column: dest, start: 0, end: 14}
            - name: x_maker
              static: manufacturer
              task: multiclass
            - name: x_avg_delay_month
              aggregate: {fn: avg, table: flights, column: dep_delay, end: 1, unit: months,
                          where: {not: {column: origin, op: in, value: [JFK]}}}
              cast: {op: ">", value: 10}
              entity_filter: {where: {column: seats, op: ">=", value: 100}}
              anchors: {spine: {start: "2013-03-01", step: 1, unit: months}}
            - name: x_jfk_delay_minutes
              aggregate: {fn: sum, table: flights, column: dep_delay, start: 0, end: 7,
                          where: {column: origin, op: "=", value: JFK}}
              entity_filter: {aggregate: {fn: count, table: flights, start: -30, end: 0},
                              cast: {op: ">", value: 0}}
              anchors: {spine: {start: "2013-10-01", step: 7}}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    p = Project(tmp_path_factory.mktemp("labels_macro"))
    yml = p.path / "models" / "demo" / "planes.yml"
    head = "          targets:  # predictive queries on planes; see docs/targets.md\n"
    assert head in yml.read_text()
    yml.write_text(yml.read_text().replace(head, head + EXTRA_TARGETS.lstrip("\n")))
    result = p.dbt(
        "run",
        "--select",
        "+rfm_labels",
        "+rfm_item_history",
        "+rfm_target_history",
        "+rfm_sibling_history",
    )
    assert result.success, result.exception
    yield p


def _by_plane(p: Project, where: str = "true") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Flight times (datetime64[us], sorted) and dests per tail number, after a row filter."""
    t = p.query(
        "select tailnum, scheduled_departure, dest from flights "
        f"where tailnum is not null and ({where}) order by tailnum, scheduled_departure, dest"
    )
    tails = t.column("tailnum").to_numpy(zero_copy_only=False)
    times = t.column("scheduled_departure").to_numpy().astype("datetime64[us]")
    dests = t.column("dest").to_numpy(zero_copy_only=False)
    names, starts = np.unique(tails, return_index=True)
    bounds = [*starts.tolist(), len(tails)]
    return {
        str(name): (times[bounds[k] : bounds[k + 1]], dests[bounds[k] : bounds[k + 1]])
        for k, name in enumerate(names)
    }


@pytest.fixture(scope="module")
def flights(project: Project) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return _by_plane(project)


def _count(flights: dict, tail: str, lo: datetime, hi: datetime) -> int:
    """Flights of ``tail`` with time in (lo, hi]."""
    if tail not in flights:
        return 0
    times = flights[tail][0]
    lo64, hi64 = np.datetime64(lo, "us"), np.datetime64(hi, "us")
    return int(np.searchsorted(times, hi64, "right") - np.searchsorted(times, lo64, "right"))


def _window_counts(
    flights: dict, anchors: set[tuple[str, datetime]], days: int
) -> dict[tuple[str, datetime], int]:
    """Flights per anchor with time in (anchor, anchor + days], vectorised per plane."""
    by_tail: dict[str, list[datetime]] = {}
    for e, a in anchors:
        by_tail.setdefault(e, []).append(a)
    out = {}
    for tail, ats in by_tail.items():
        times = flights[tail][0] if tail in flights else np.array([], "datetime64[us]")
        lo = np.array(ats, dtype="datetime64[us]")
        hi = lo + np.timedelta64(days, "D")
        n = np.searchsorted(times, hi, "right") - np.searchsorted(times, lo, "right")
        out.update({(tail, a): int(k) for a, k in zip(ats, n, strict=True)})
    return out


def _pick(anchors: Iterable[tuple[str, datetime]], n: int) -> set[tuple[str, datetime]]:
    """anchors.max_context: the n anchors with the smallest md5 of 'entity_id|anchor_time'."""
    return set(
        sorted(anchors, key=lambda a: (hashlib.md5(f"{a[0]}|{a[1]}".encode()).hexdigest(), a))[:n]
    )


def _scoring_time(p: Project) -> datetime:
    row = p.query(
        "select greatest((select max(scheduled_departure) from flights), "
        "(select max(time_hour) from weather)) as t"
    )
    return row.column("t")[0].as_py()


def _anchors(p: Project, target: str, role: str) -> set[tuple[str, datetime]]:
    t = p.query(
        f"select entity_id, anchor_time from rfm_anchors "
        f"where target_name = '{target}' and role = '{role}'"
    ).to_pydict()
    return set(zip(t["entity_id"], t["anchor_time"], strict=True))


def _labels(p: Project, target: str, column: str) -> dict[tuple[str, datetime], Any]:
    t = p.query(
        f"select entity_id, anchor_time, {column} as v from rfm_labels "
        f"where target_name = '{target}'"
    ).to_pydict()
    return {(e, a): v for e, a, v in zip(t["entity_id"], t["anchor_time"], t["v"], strict=True)}


def test_plane_anchors_match_independent_spine(project: Project, flights: dict) -> None:
    planes = project.query("select tailnum from planes").column("tailnum").to_pylist()
    scoring = _scoring_time(project)
    # every flight of a plane, ordered by time, to find the planes active in a window
    tails = np.concatenate([np.full(len(v[0]), k, dtype=object) for k, v in flights.items()])
    times = np.concatenate([v[0] for v in flights.values()])
    order = np.argsort(times, kind="stable")
    tails, flight_times = tails[order], times[order]
    planes_set = set(planes)
    active: dict[datetime, set[str]] = {}  # planes that flew in (at - 30 days, at]

    def flew(at: datetime) -> set[str]:
        if at not in active:
            start = np.datetime64(at - timedelta(days=30), "us")
            lo = np.searchsorted(flight_times, start, "right")
            hi = np.searchsorted(flight_times, np.datetime64(at, "us"), "right")
            active[at] = set(tails[lo:hi].tolist()) & planes_set
        return active[at]

    for target, window_days in [
        ("plane_delay_7d", 7),
        ("plane_flights_30d", 30),
        ("plane_next_dests_7d", 7),
    ]:
        # back from the scoring time: context anchors share the query anchors' weekday and hour
        times = []
        t = scoring - timedelta(days=7)
        while t >= SPINE_START:
            if t + timedelta(days=window_days) <= scoring:
                times.append(t)
            t -= timedelta(days=7)
        assert len(times) > 40
        assert {(a.weekday(), a.time()) for a in times} == {(scoring.weekday(), scoring.time())}
        context = _anchors(project, target, "context")
        candidates = {(tail, a) for a in times for tail in flew(a)}
        assert len(candidates) > MAX_CONTEXT[target]
        assert context == _pick(candidates, MAX_CONTEXT[target]), target
        assert _anchors(project, target, "query") == {(tail, scoring) for tail in flew(scoring)}
        # labels are fully observed: every context window ends by the scoring time
        assert max(a for _, a in context) + timedelta(days=window_days) <= scoring


def test_plane_delay_labels(project: Project) -> None:
    bad = _by_plane(project, "dep_delay > 15 or cancelled")
    labels = _labels(project, "plane_delay_7d", "label")
    context = _anchors(project, "plane_delay_7d", "context")
    assert set(labels) == context  # EXISTS keeps entities with no future rows (label 0)
    want = {k: float(n > 0) for k, n in _window_counts(bad, context, 7).items()}
    assert labels == want
    assert 0.1 < np.mean(list(labels.values())) < 0.9


def _check_flight_counts(project: Project, flights: dict) -> tuple[int, int]:
    """plane_flights_30d's labels against independent window counts; returns how many context
    anchors have a flight exactly at the window's end and at its start (the anchor)."""
    labels = _labels(project, "plane_flights_30d", "label")
    context = _anchors(project, "plane_flights_30d", "context")
    assert set(labels) == context
    assert labels == {k: float(n) for k, n in _window_counts(flights, context, 30).items()}
    assert any(v == 0 for v in labels.values())  # planes with no future flights are kept
    flown = {(k, t) for k, v in flights.items() for t in v[0].astype("datetime64[us]").tolist()}
    at_end = sum((e, a + timedelta(days=30)) in flown for e, a in labels)
    return at_end, sum((e, a) in flown for e, a in labels)


def test_plane_flights_labels(project: Project, flights: dict) -> None:
    _check_flight_counts(project, flights)


def test_plane_next_dests_labels(project: Project, flights: dict) -> None:
    labels = _labels(project, "plane_next_dests_7d", "label_items")
    context = _anchors(project, "plane_next_dests_7d", "context")
    want = {}
    for e, a in context:
        if e not in flights:
            continue
        times, dests = flights[e]
        lo = np.searchsorted(times, np.datetime64(a, "us"), "right")
        hi = np.searchsorted(times, np.datetime64(a + timedelta(days=7), "us"), "right")
        if hi > lo:
            want[(e, a)] = sorted(set(dests[lo:hi].tolist()))
    assert labels == want  # LIST_DISTINCT drops entities with no rows in the window
    assert len(want) < len(context)


def test_flight_delayed_static_target(project: Project) -> None:
    """Every flight is labelled: more than 15 minutes late, or cancelled (no delay then)."""
    t = project.query(
        "select cast(flight_id as varchar) as id, scheduled_departure as t, dep_delay, "
        "cancelled from flights"
    ).to_pylist()
    split = datetime(2013, 12, 24)
    known = [(f["id"], f["t"]) for f in t if f["t"] <= split]
    assert len(known) > MAX_CONTEXT["flight_delayed_15"]
    picked = _pick(known, MAX_CONTEXT["flight_delayed_15"])
    assert _anchors(project, "flight_delayed_15", "context") == picked
    assert _anchors(project, "flight_delayed_15", "query") == {
        (f["id"], f["t"]) for f in t if f["t"] > split
    }
    labels = _labels(project, "flight_delayed_15", "label")
    late = {(f["id"], f["t"]): float(_late(f)) for f in t}
    assert labels == {a: late[a] for a in picked}
    assert 0 < sum(labels.values()) < len(labels)


def _late(flight: dict[str, Any]) -> bool:
    """The demo's target from the raw columns: departed over 15 minutes late, or cancelled."""
    return bool(flight["cancelled"]) or (flight["dep_delay"] or 0) > 15


def test_python_label_sql_agrees_with_macro(project: Project) -> None:
    with duckdb.connect(str(project.db)) as con:
        graph = GraphSpec.from_rows(
            con.sql("select * from rfm_graph_spec").to_arrow_table().to_pylist()
        )
        targets = targets_from_manifest(project.target / "manifest.json", graph)
        assert [t.name for t in targets] == [
            "flight_delayed_15",
            "plane_delay_7d",
            "plane_flights_30d",
            "plane_next_dests_7d",
            "x_avg_delay_month",
            "x_first_dest",
            "x_jfk_delay_minutes",
            "x_maker",
        ]
        for name in [t.name for t in targets]:
            anchors = con.sql(
                f"select entity_id, anchor_time from rfm_anchors "
                f"where target_name = '{name}' and role = 'context'"
            ).to_arrow_table()
            got = build_labels(con, graph, find_target(targets, name), anchors)
            want = con.sql(
                "select entity_id, anchor_time, label, label_class, label_items from rfm_labels "
                f"where target_name = '{name}' order by entity_id, anchor_time"
            ).to_arrow_table()
            assert got.num_rows == want.num_rows > 0, name
            assert got.cast(want.schema).equals(want), name


def test_item_history_counts_only_earlier_flights(project: Project, flights: dict) -> None:
    """rfm_item_history against numpy over the raw flights, for a sample of anchors of both
    roles: per destination, flights at or before the anchor in the last 1, 4, 13 weeks and
    all time, and weeks since the latest; never a flight after the anchor."""
    name = "plane_next_dests_7d"
    got = project.query(
        "select entity_id, anchor_time, item, n_window_1, n_window_4, n_window_13, n_all, "
        f"windows_since_last from rfm_item_history where target_name = '{name}'"
    ).to_pylist()
    rows = {(r["entity_id"], r["anchor_time"], r["item"]): r for r in got}
    anchors = _anchors(project, name, "context") | _anchors(project, name, "query")
    sample = sorted(anchors, key=lambda a: hashlib.md5(f"{a[0]}{a[1]}".encode()).digest())[:60]
    checked = 0
    for tail, t in sample:
        times, dests = flights.get(tail, (np.array([], "datetime64[us]"), np.array([])))
        t64 = np.datetime64(t, "us")
        for dest in sorted({str(d) for d in dests[times <= t64] if d is not None}):
            mine = times[(dests == dest) & (times <= t64)]
            want = [int((mine > t64 - np.timedelta64(7 * k, "D")).sum()) for k in (1, 4, 13)]
            r = rows.pop((tail, t, dest))
            assert [r["n_window_1"], r["n_window_4"], r["n_window_13"], r["n_all"]] == [
                *want,
                len(mine),
            ]
            weeks = (t64 - mine.max()) / np.timedelta64(7, "D")
            assert r["windows_since_last"] == pytest.approx(float(weeks))
            checked += 1
        assert not [k for k in rows if k[:2] == (tail, t)], "a destination not flown by then"
    assert checked > 100


def test_target_history_reads_only_what_is_known(project: Project) -> None:
    """rfm_target_history against a Python loop over the raw flights: per window, the sum of
    JFK departure delays of the plane's flights at or before the anchor whose delay was known
    strictly before it (flights.yml: dep_delay is available at departed_at), the count of its
    flights for plane_flights_30d, and for the binary plane_delay_7d (EXISTS) the count of its
    late or cancelled flights known strictly before the anchor."""
    raw = project.query(
        "select tailnum, scheduled_departure as t, departed_at, dep_delay, cancelled, origin "
        "from flights where tailnum is not null"
    ).to_pylist()
    by_tail: dict[str, list[dict[str, Any]]] = {}
    for r in raw:
        by_tail.setdefault(r["tailnum"], []).append(r)
    got = project.query(
        "select * from rfm_target_history where target_name in "
        "('x_jfk_delay_minutes', 'plane_flights_30d', 'plane_delay_7d')"
    ).to_pylist()
    names = {"x_jfk_delay_minutes", "plane_flights_30d", "plane_delay_7d"}
    assert {r["target_name"] for r in got} == names
    times = {g["anchor_time"] for g in got}
    in_air = {  # anchors with a JFK flight scheduled before them that departed after them
        (r["tailnum"], a)
        for r in raw
        if r["origin"] == "JFK" and r["dep_delay"] is not None and r["departed_at"] > r["t"]
        for a in times
        if r["t"] <= a <= r["departed_at"]
    }
    sample = sorted(got, key=lambda r: hashlib.md5(str(r).encode()).digest())[:60]
    jfk = [r for r in got if r["target_name"] == "x_jfk_delay_minutes"]
    sample += [r for r in jfk if (r["entity_id"], r["anchor_time"]) in in_air]
    gated = 0
    for r in sample:
        t, flights = r["anchor_time"], by_tail.get(r["entity_id"], [])
        for k in (1, 4, 13):
            if r["target_name"] == "plane_flights_30d":
                lo = t - timedelta(days=30 * k)
                want = sum(lo < f["t"] <= t for f in flights) / k
            elif r["target_name"] == "plane_delay_7d":
                lo = t - timedelta(days=7 * k)
                late = [f for f in flights if f["cancelled"] or (f["dep_delay"] or 0) > 15]
                want = sum(lo < f["t"] <= t and f["departed_at"] < t for f in late) / k
            else:
                lo = t - timedelta(days=7 * k)
                rows = [f for f in flights if lo < f["t"] <= t and f["origin"] == "JFK"]
                known = [f for f in rows if f["dep_delay"] is not None and f["departed_at"] < t]
                gated += sum(f["dep_delay"] is not None and f["departed_at"] >= t for f in rows)
                want = sum(f["dep_delay"] for f in known) / k
            assert r[f"per_window_{k}"] == pytest.approx(want), (r, k)
    assert gated > 0  # some delays before the anchor were not known yet: not counted


def test_sibling_history_reads_only_what_is_known(project: Project) -> None:
    """rfm_sibling_history against a Python loop over the raw flights: per link and window
    (3, 6, 24 hours in flights.yml), the other flights sharing the origin (or the plane)
    scheduled in the window; those whose delay was known strictly before the anchor (departed
    by then, flights.yml: late_or_cancelled is available at departed_at) are counted with
    their labels (over 15 minutes late, or cancelled), the others as pending. The outcome
    columns' rows (decision 0017) count and sum each column's values that became known in the
    window (dep_delay and cancelled at departure, arr_delay and air_time at arrival), of those
    due in the longest window."""
    raw = project.query(
        "select cast(flight_id as varchar) as id, scheduled_departure as t, departed_at, "
        "arrived_at, dep_delay, arr_delay, air_time, cancelled, origin, tailnum from flights"
    ).to_pylist()
    got = project.query(
        "select * from rfm_sibling_history where target_name = 'flight_delayed_15'"
    ).to_pylist()
    assert {r["link"] for r in got} == {"carrier", "dest", "origin,time_hour", "origin", "tailnum"}
    assert {r["window_length"] for r in got} == {3, 6, 24}
    outcomes = {"dep_delay": "departed_at", "cancelled": "departed_at"}
    outcomes |= {"arr_delay": "arrived_at", "air_time": "arrived_at"}
    assert {r["column_name"] for r in got} == {"", *outcomes}
    ids = {r["entity_id"] for r in got}
    anchors = {f["id"]: f for f in raw if f["id"] in ids}
    by: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for f in raw:
        for link in ("origin", "tailnum"):
            by.setdefault((link, f[link]), []).append(f)
    rows = [r for r in got if r["link"] in ("origin", "tailnum")]
    sample = sorted(rows, key=lambda r: hashlib.md5(str(r).encode()).digest())[:400]
    pending = cancelled = late = 0
    for r in sample:
        me, t = anchors[r["entity_id"]], r["anchor_time"]
        lo, longest = t - timedelta(hours=r["window_length"]), t - timedelta(hours=24)
        siblings = [
            f
            for f in by.get((r["link"], me[r["link"]]), [])
            if f["id"] != me["id"] and longest < f["t"] <= t and me[r["link"]] is not None
        ]
        column = r["column_name"]
        gate = outcomes.get(column, "departed_at")
        due = [f for f in siblings if lo < f["t"]]
        n_pending = sum(f[gate] is None or f[gate] >= t for f in due)
        if column:  # due in the longest window, known in this one
            values = [
                float(f[column])
                for f in siblings
                if f[gate] is not None and lo < f[gate] < t and f[column] is not None
            ]
            want = (len(values), pytest.approx(sum(values)), n_pending)
            late += sum(f["t"] <= lo < f[gate] < t for f in siblings if f[gate] is not None)
        else:  # due in the window, known before the anchor
            known = [f for f in due if f[gate] < t]
            want = (len(known), sum(_late(f) for f in known), n_pending)
            pending += n_pending
            cancelled += sum(bool(f["cancelled"]) for f in known)
        assert (r["n_known"], r["value_sum"], r["n_pending"]) == want, r
    assert pending > 0  # some siblings had not departed yet: their delays are not read
    assert cancelled > 0  # cancelled siblings count as positives
    assert late > 0  # some were due before the window but became known in it: read


def test_history_models_pass_their_data_tests(project: Project) -> None:
    """The data tests of models/targets.yml on the histories built here (keys, links to
    rfm_anchors, consistent counts): the fixture runs the models without their tests."""
    models = ("rfm_labels", "rfm_item_history", "rfm_target_history", "rfm_sibling_history")
    result = project.dbt("test", "--select", *models)
    assert result.success, result.exception
    assert len(result.result) >= 20  # the tests ran


def test_python_histories_agree_with_macros(project: Project) -> None:
    with duckdb.connect(str(project.db)) as con:
        graph = GraphSpec.from_rows(
            con.sql("select * from rfm_graph_spec").to_arrow_table().to_pylist()
        )
        targets = targets_from_manifest(project.target / "manifest.json", graph)
        for name, model, order in (
            ("plane_next_dests_7d", "rfm_item_history", ", item"),
            ("plane_flights_30d", "rfm_target_history", ""),
            ("x_jfk_delay_minutes", "rfm_target_history", ""),
            ("plane_delay_7d", "rfm_target_history", ""),
            ("flight_delayed_15", "rfm_sibling_history", ", link, window_length, column_name"),
        ):
            anchors = con.sql(
                f"select entity_id, anchor_time from rfm_anchors where target_name = '{name}'"
            ).to_arrow_table()
            got = build_history(con, graph, find_target(targets, name), anchors)
            assert got is not None
            want = con.sql(
                f"select * exclude (target_name) from {model} "
                f"where target_name = '{name}' order by anchor_time, entity_id{order}"
            ).to_arrow_table()
            assert got.num_rows == want.num_rows > 0, name
            assert got.cast(want.schema).equals(want), name
        over_avg = find_target(targets, "x_avg_delay_month")  # binary, a cast of an AVG
        assert build_history(con, graph, over_avg, anchors) is None


def test_jinja_errors_name_target_and_column(project: Project) -> None:
    yml = project.path / "models" / "demo" / "planes.yml"
    original = yml.read_text()
    try:
        yml.write_text(
            original.replace(
                'table: flights, column: "*", start: 0, end: 30',
                "table: flights, column: dep_delai, start: 0, end: 30",
            )
        )
        result = project.dbt("compile", "--select", "rfm_anchors")
        assert not result.success
        msg = str(result.exception)
        assert "plane_flights_30d" in msg and "dep_delai" in msg and "flights" in msg
        assert WEEKLY in original
        yml.write_text(original.replace(WEEKLY, WEEKLY.replace("anchors:", "anchor:"), 1))
        result = project.dbt("compile", "--select", "rfm_anchors")
        assert not result.success
        assert "unknown key 'anchor'" in str(result.exception)
        assert "did you mean 'anchors'" in str(result.exception)
        history = WEEKLY + "              history: {windows: [1]}\n"
        yml.write_text(original.replace(WEEKLY, history, 1))
        result = project.dbt("compile", "--select", "rfm_anchors")
        assert not result.success
        assert "plane_flights_30d" in str(result.exception)
        assert "history applies to static targets" in str(result.exception)
        yml.write_text(original)
        flights = project.path / "models" / "demo" / "flights.yml"
        declared = flights.read_text()
        assert "windows: [3, 6, 24]" in declared
        try:
            flights.write_text(declared.replace("windows: [3, 6, 24]", "windows: [0, 6]"))
            result = project.dbt("compile", "--select", "rfm_anchors")
            assert not result.success
            assert "flight_delayed_15" in str(result.exception)
            assert "history.windows must be a non-empty list" in str(result.exception)
            # a boolean column is its own label; a numeric one needs a cast
            numeric = declared.replace("static: late_or_cancelled ", "static: dep_delay ")
            assert numeric != declared
            flights.write_text(numeric)
            result = project.dbt("compile", "--select", "rfm_anchors")
            assert not result.success
            assert "flight_delayed_15" in str(result.exception)
            assert "cannot infer the task" in str(result.exception)
            flights.write_text(
                numeric.replace(
                    "static: dep_delay ", "task: binary\n" + " " * 14 + "static: dep_delay "
                )
            )
            result = project.dbt("compile", "--select", "rfm_anchors")
            assert not result.success
            assert "a binary static target needs a cast" in str(result.exception)
        finally:
            flights.write_text(declared)
    finally:
        yml.write_text(original)


def test_context_observed_data_test_catches_late_anchors(project: Project) -> None:
    test_args = ("test", "--select", "rfm_anchors,test_name:rfm_context_observed")
    with duckdb.connect(str(project.db)) as con:
        con.execute(
            "insert into rfm_anchors select target_name, entity_id, "
            "anchor_time + interval 8 day, role from rfm_anchors "  # past one step: always late
            "where target_name = 'plane_flights_30d' and role = 'context' "
            "and anchor_time = (select max(anchor_time) from rfm_anchors "
            "where target_name = 'plane_flights_30d' and role = 'context') limit 1"
        ).complete()
    assert not project.dbt(*test_args).success


def test_scoring_time_var(project: Project, flights: dict) -> None:
    scoring = datetime(2013, 10, 1, 12)  # 8:00 in New York: many departures at the anchors
    result = project.dbt(
        "run", "--select", "rfm_anchors", "rfm_labels",
        "--vars", f"{{dbt_rfm:scoring_time: '{scoring}'}}",
    )  # fmt: skip
    assert result.success, result.exception
    # window edges: a flight exactly at anchor + 30 days counts, one exactly at the anchor does not
    at_end, at_start = _check_flight_counts(project, flights)
    assert at_end > 0 and at_start > 0  # the data has flights on both edges
    for target in ("plane_delay_7d", "plane_flights_30d", "plane_next_dests_7d"):
        phases = {(a.weekday(), a.time()) for _, a in _anchors(project, target, "context")}
        assert phases == {(scoring.weekday(), scoring.time())}, target
    t = project.query(
        "select target_name, role, min(anchor_time) as lo, max(anchor_time) as hi "
        "from rfm_anchors group by all"
    ).to_pylist()
    got = {(r["target_name"], r["role"]): (r["lo"], r["hi"]) for r in t}
    for name, days in [("plane_delay_7d", 7), ("plane_flights_30d", 30)]:
        assert got[(name, "query")] == (scoring, scoring)
        last = got[(name, "context")][1]
        assert last + timedelta(days=days) <= scoring < last + timedelta(days=days + 7)
    assert got[("flight_delayed_15", "context")][1] <= datetime(2013, 12, 24)  # explicit split


def test_no_targets_gives_typed_empty_tables(project: Project) -> None:
    for name in ("planes.yml", "flights.yml"):
        yml = project.path / "models" / "demo" / name
        doc = yaml.safe_load(yml.read_text())
        for model in doc["models"]:
            model.get("config", {}).get("meta", {}).get("rfm", {}).pop("targets", None)
        yml.write_text(yaml.safe_dump(doc))
    result = project.dbt("run", "--select", "rfm_anchors", "rfm_labels")
    assert result.success, result.exception
    for table, want in [
        ("rfm_anchors", ["VARCHAR", "VARCHAR", "TIMESTAMP", "VARCHAR"]),
        ("rfm_labels", ["VARCHAR", "VARCHAR", "TIMESTAMP", "DOUBLE", "VARCHAR", "VARCHAR[]"]),
    ]:
        assert project.query(f"select count(*) as n from {table}").column("n")[0].as_py() == 0
        described = project.query(f"describe {table}").column("column_type").to_pylist()
        assert described == want
