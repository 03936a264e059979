"""rfm_anchors / rfm_labels built by dbt on the demo project, checked against independent
computations (numpy over the raw tables) and against the Python label SQL.

Runs dbt through dbtRunner on a temporary copy of integration_tests/ with its own DuckDB file,
target and log folders, building only ``+rfm_labels``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
import yaml

from dbt_rfm.labels import build_labels
from dbt_rfm.spec import GraphSpec
from dbt_rfm.targets import find_target, targets_from_manifest

REPO = Path(__file__).resolve().parents[1]
SPINE_START = datetime(2013, 2, 1)


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


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    p = Project(tmp_path_factory.mktemp("labels_macro"))
    result = p.dbt("run", "--select", "+rfm_labels")
    assert result.success, result.exception
    yield p


def _by_plane(p: Project, where: str = "true") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Flight times (datetime64[us], sorted) and dests per tail number, after a row filter."""
    t = p.query(
        "select tailnum, scheduled_departure, dest from flights "
        f"where tailnum is not null and ({where}) order by tailnum, scheduled_departure, dest"
    ).to_pydict()
    out: dict[str, tuple[list, list]] = {}
    for tail, ts, dest in zip(t["tailnum"], t["scheduled_departure"], t["dest"], strict=True):
        times, dests = out.setdefault(tail, ([], []))
        times.append(ts)
        dests.append(dest)
    return {k: (np.array(v[0], dtype="datetime64[us]"), np.array(v[1])) for k, v in out.items()}


def _count(flights: dict, tail: str, lo: datetime, hi: datetime) -> int:
    """Flights of ``tail`` with time in (lo, hi]."""
    if tail not in flights:
        return 0
    times = flights[tail][0]
    lo64, hi64 = np.datetime64(lo, "us"), np.datetime64(hi, "us")
    return int(np.searchsorted(times, hi64, "right") - np.searchsorted(times, lo64, "right"))


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


@pytest.mark.parametrize(
    ("target", "window_days"),
    [("plane_delay_7d", 7), ("plane_flights_30d", 30), ("plane_next_dests_7d", 7)],
)
def test_plane_anchors_match_independent_spine(
    project: Project, target: str, window_days: int
) -> None:
    flights = _by_plane(project)
    planes = project.query("select tailnum from planes").column("tailnum").to_pylist()
    scoring = _scoring_time(project)
    times = []
    t = SPINE_START
    while t + timedelta(days=window_days) <= scoring:
        times.append(t)
        t += timedelta(days=7)

    def active(tail: str, at: datetime) -> bool:  # flew in (at - 30 days, at]
        return _count(flights, tail, at - timedelta(days=30), at) > 0

    want_context = {(tail, a) for a in times for tail in planes if active(tail, a)}
    want_query = {(tail, scoring) for tail in planes if active(tail, scoring)}
    context = _anchors(project, target, "context")
    assert context == want_context
    assert _anchors(project, target, "query") == want_query
    # labels are fully observed: every context window ends by the scoring time
    assert max(a for _, a in context) + timedelta(days=window_days) <= scoring
    assert len(times) > 40


def test_plane_delay_labels(project: Project) -> None:
    bad = _by_plane(project, "dep_delay > 15 or cancelled")
    labels = _labels(project, "plane_delay_7d", "label")
    context = _anchors(project, "plane_delay_7d", "context")
    assert set(labels) == context  # EXISTS keeps entities with no future rows (label 0)
    want = {(e, a): float(_count(bad, e, a, a + timedelta(days=7)) > 0) for e, a in context}
    assert labels == want
    assert 0.1 < np.mean(list(labels.values())) < 0.9


def test_plane_flights_labels_and_window_edges(project: Project) -> None:
    flights = _by_plane(project)
    labels = _labels(project, "plane_flights_30d", "label")
    context = _anchors(project, "plane_flights_30d", "context")
    assert set(labels) == context
    assert labels == {
        (e, a): float(_count(flights, e, a, a + timedelta(days=30))) for e, a in context
    }
    assert any(v == 0 for v in labels.values())  # planes with no future flights are kept
    # window edges: a flight exactly at anchor + 30 days counts, one exactly at the anchor does not
    at_end = at_start = 0
    for (e, a), v in labels.items():
        times = flights.get(e, (np.array([], "datetime64[us]"),))[0]
        if np.datetime64(a + timedelta(days=30), "us") in times:
            at_end += 1
            assert v >= 1
        if np.datetime64(a, "us") in times:
            at_start += 1
    assert at_end > 0 and at_start > 0  # the demo data has flights on both edges


def test_plane_next_dests_labels(project: Project) -> None:
    flights = _by_plane(project)
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
    t = project.query(
        "select cast(flight_id as varchar) as id, scheduled_departure as t, dep_delay from flights"
    ).to_pydict()
    split = datetime(2013, 12, 1)
    rows = list(zip(t["id"], t["t"], t["dep_delay"], strict=True))
    assert _anchors(project, "flight_delayed_15", "context") == {
        (i, ts) for i, ts, d in rows if ts <= split and d is not None
    }
    assert _anchors(project, "flight_delayed_15", "query") == {
        (i, ts) for i, ts, _ in rows if ts > split
    }
    labels = _labels(project, "flight_delayed_15", "label")
    assert labels == {(i, ts): float(d > 15) for i, ts, d in rows if ts <= split and d is not None}


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
            assert got.to_pylist() == want.to_pylist(), name


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
        yml.write_text(original.replace("anchors: *weekly\n", "anchor: *weekly\n", 1))
        result = project.dbt("compile", "--select", "rfm_anchors")
        assert not result.success
        assert "unknown key 'anchor'" in str(result.exception)
        assert "did you mean 'anchors'" in str(result.exception)
    finally:
        yml.write_text(original)


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
