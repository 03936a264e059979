"""The demo project (integration_tests): its rfm_graph_spec table equals the Python reader's
graph, the declared shapes are all there, and the real dangling keys warn without failing."""

from __future__ import annotations

import duckdb
import pytest
from graph_shapes_project import REPO, DbtProject, copy_fixture

from dbt_rfm.manifest import column_types_from_duckdb, graph_spec_from_manifest
from dbt_rfm.spec import GraphSpec


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    project = copy_fixture(tmp_path_factory.mktemp("demo"), REPO / "integration_tests")
    run = project.dbt("build", "--select", "+rfm_graph_spec")
    assert run.success, run.text
    project.build_results = project.run_results
    return project


def test_demo_warehouse_table_equals_python_reader(demo: DbtProject) -> None:
    with duckdb.connect(str(demo.db)) as con:
        rows = con.sql("select * from rfm_graph_spec").to_arrow_table().to_pylist()
        types = column_types_from_duckdb(con)
    from_sql = GraphSpec.from_rows(rows)
    assert from_sql == graph_spec_from_manifest(demo.manifest, types)


def test_demo_graph_shape(demo: DbtProject) -> None:
    with duckdb.connect(str(demo.db)) as con:
        spec = graph_spec_from_manifest(demo.manifest, column_types_from_duckdb(con))
    assert {t.name: t.primary_key for t in spec.tables} == {
        "airlines": ("carrier",),
        "airports": ("faa",),
        "flights": ("flight_id",),
        "planes": ("tailnum",),
        "weather": ("origin", "time_hour"),
    }
    assert {t.name: t.time_column for t in spec.tables} == {
        "airlines": None,
        "airports": None,
        "flights": "scheduled_departure",
        "planes": None,
        "weather": "time_hour",
    }
    assert [lk.name for lk in spec.links] == [
        "flights.carrier->airlines",
        "flights.dest->airports",
        "flights.origin+time_hour->weather",
        "flights.origin->airports",
        "flights.tailnum->planes",
        "weather.origin->airports",
    ]
    flights = spec.table("flights")
    assert flights.column("flight_number").stype == "categorical"  # meta.rfm.stypes
    # the outcomes stay as history, each an input once known (meta.rfm.available_at)
    values = {c.name for c in flights.value_columns}
    assert {"dep_delay", "cancelled", "arr_delay", "air_time"} <= values
    assert not {"departed_at", "arrived_at"} & values
    assert flights.column("dep_delay").available_at == "departed_at"
    assert flights.column("air_time").available_at == "arrived_at"


def test_demo_dangling_keys_warn(demo: DbtProject) -> None:
    status = {r["unique_id"].split(".")[2]: r["status"] for r in demo.build_results["results"]}
    assert "error" not in status.values() and "fail" not in status.values()
    warned = sorted(name for name, s in status.items() if s == "warn")
    assert warned == [
        "dbt_rfm_rfm_link_integrity_flights_dest__ref_airports___faa",
        "dbt_rfm_rfm_link_integrity_flights_origin__time_hour__ref_weather___origin__time_hour",
        "relationships_flights_tailnum__tailnum__ref_planes_",
    ]
