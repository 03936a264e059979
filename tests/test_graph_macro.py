"""The rfm_graph() macro and the rfm_graph_spec model, through dbt, on the fixture project.

The warehouse table must equal the Python reader's graph, and the macro's errors must carry
the Python reader's wording. Also checks the package's generic data tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from graph_shapes_project import FIXTURE_COLUMN_TYPES, DbtProject, DbtRun, copy_fixture

from dbt_rfm.errors import RfmError
from dbt_rfm.manifest import column_types_from_duckdb, graph_spec_from_manifest
from dbt_rfm.sampling.graph_dict import graph_dict
from dbt_rfm.spec import SPEC_ROW_COLUMNS, GraphSpec


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    project = copy_fixture(tmp_path_factory.mktemp("graph_macro"))
    run = project.dbt("build", "--select", "+rfm_graph_spec", "visits", "unrelated")
    assert run.success, run.text
    project.build_results = project.run_results
    return project


def _warehouse(project: DbtProject) -> tuple[GraphSpec, dict[str, list[tuple[str, str]]]]:
    with duckdb.connect(str(project.db)) as con:
        rows = con.sql("select * from rfm_graph_spec").to_arrow_table().to_pylist()
        return GraphSpec.from_rows(rows), column_types_from_duckdb(con)


def test_warehouse_table_equals_python_reader(built: DbtProject) -> None:
    from_sql, types = _warehouse(built)
    assert from_sql == graph_spec_from_manifest(built.manifest, types)
    assert len(from_sql.tables) == 5 and len(from_sql.links) == 6
    flights = from_sql.table("flights")
    assert flights.column("delay").available_at == "delay_known_at"  # declared as `Delay`
    assert flights.column("origin").available_at is None
    assert "delay_known_at" not in {c.name for c in flights.value_columns}


def test_macro_returns_the_documented_dict(built: DbtProject) -> None:
    """rfm_graph() returns exactly graph_dict(spec): the shape the other macros consume."""
    run = built.dbt("run-operation", "save_rfm_graph")
    assert run.success, run.text
    with duckdb.connect(str(built.db)) as con:
        ((text,),) = con.sql("select graph from rfm_graph_json").fetchall()
    _, types = _warehouse(built)
    assert json.loads(text) == graph_dict(graph_spec_from_manifest(built.manifest, types))


def test_fixture_column_types_are_the_warehouse_types(built: DbtProject) -> None:
    _, types = _warehouse(built)
    by_table = {rel.split(".")[-1].strip('"'): cols for rel, cols in types.items()}
    for model, cols in FIXTURE_COLUMN_TYPES.items():
        assert by_table[model] == cols, model


def test_spec_table_columns(built: DbtProject) -> None:
    with duckdb.connect(str(built.db)) as con:
        schema = con.sql("select * from rfm_graph_spec").to_arrow_table().schema
    assert tuple(schema.names) == SPEC_ROW_COLUMNS


def test_generic_data_tests(built: DbtProject) -> None:
    results = {
        (r["unique_id"].split(".")[2], json.dumps(r.get("failures"))): r["status"]
        for r in built.build_results["results"]
        if "visits" in r["unique_id"]
    }
    # composite key: one duplicate (1, 2013-01-01) and one null key
    assert results[("dbt_rfm_rfm_primary_key_visits_employee_id__day", "2")] == "warn"
    # 1 of 4 non-null child keys dangles: passes at 0.5, fails (warns) at 0.1
    passed = [k for k, s in results.items() if "link_integrity" in k[0] and s == "pass"]
    warned = [k for k, s in results.items() if "link_integrity" in k[0] and s == "warn"]
    assert len(passed) == 1 and "0_5" in passed[0][0]
    assert len(warned) == 1 and "0_1" in warned[0][0] and warned[0][1] == "1"


def _expect_same_error(project: DbtProject, run: DbtRun) -> str:
    """The Python reader on the same (broken) project raises; dbt reported the same message."""
    assert not run.success, run.text
    with duckdb.connect(str(project.db)) as con:
        types = column_types_from_duckdb(con)
    with pytest.raises(RfmError) as e:
        graph_spec_from_manifest(project.manifest, types)
    assert str(e.value) in run.text, run.text
    return str(e.value)


def _run_spec_with(project: DbtProject, tables: dict[str, str], files: dict[str, str]) -> DbtRun:
    """Create warehouse tables and add model files, then run rfm_graph_spec alone.

    The tables are created directly (not by dbt) so that the `dbt_rfm:graph_models` var, and
    with it dbt's partial parse, stays as it is: each call then takes about a second.
    """
    with duckdb.connect(str(project.db)) as con:
        for name, select in tables.items():
            con.execute(f"create or replace table main.{name} as {select}")
    for name, text in files.items():
        (project.path / "models" / name).write_text(text)
    try:
        return project.dbt("run", "--select", "rfm_graph_spec")
    finally:
        for name in files:
            (project.path / "models" / name).unlink()


def test_macro_unknown_meta_key(built: DbtProject) -> None:
    run = _run_spec_with(
        built,
        {"typo": "select 1 as id"},
        {
            "typo.sql": "select 1 as id",
            "typo.yml": "version: 2\nmodels:\n  - name: typo\n    config:\n      meta:\n"
            "        rfm:\n          time_col: id\n",
        },
    )
    message = _expect_same_error(built, run)
    assert "model 'typo': unknown key 'time_col' under meta.rfm (did you mean 'time_column'?)" in (
        message
    )


def test_macro_foreign_key_type_mismatch(built: DbtProject) -> None:
    select = "select 1 as badge_id, cast(2 as varchar) as employee_id"
    run = _run_spec_with(
        built,
        {"badges": select},
        {
            "badges.sql": select,
            "badges.yml": "version: 2\nmodels:\n  - name: badges\n    config:\n      meta:\n"
            "        rfm: {primary_key: [badge_id]}\n    columns:\n      - name: employee_id\n"
            "        data_tests:\n          - relationships:\n              arguments:\n"
            "                to: ref('employee')\n                field: employee_id\n",
        },
    )
    message = _expect_same_error(built, run)
    assert "model 'badges', column 'employee_id' is varchar but model 'employee', column " in (
        message
    )


def test_macro_time_column_not_a_time(built: DbtProject) -> None:
    select = "select 1 as login_id, 'yesterday' as logged_at"
    run = _run_spec_with(
        built,
        {"logins": select},
        {
            "logins.sql": select,
            "logins.yml": "version: 2\nmodels:\n  - name: logins\n    config:\n      meta:\n"
            "        rfm: {primary_key: login_id, time_column: logged_at}\n",
        },
    )
    message = _expect_same_error(built, run)
    assert "model 'logins', column 'logged_at': meta.rfm.time_column must be a date" in message


@pytest.mark.parametrize(
    ("available_at", "message"),
    [
        (
            "{tries: known}",
            "model 'logins', column 'known': meta.rfm.available_at.tries must name a date or "
            "timestamp column; found varchar",
        ),
        (
            "{tries: seen, seen: at}",
            "model 'logins', column 'seen': meta.rfm.available_at uses it as a time, so it "
            "cannot have an availability time itself",
        ),
    ],
)
def test_macro_available_at_errors(built: DbtProject, available_at: str, message: str) -> None:
    select = (
        "select 1 as login_id, 2 as tries, 'late' as known, timestamp '2024-01-01' as seen, "
        "timestamp '2024-01-02' as at"
    )
    run = _run_spec_with(
        built,
        {"logins": select},
        {
            "logins.sql": select,
            "logins.yml": "version: 2\nmodels:\n  - name: logins\n    config:\n      meta:\n"
            f"        rfm: {{primary_key: login_id, available_at: {available_at}}}\n",
        },
    )
    assert message in _expect_same_error(built, run)


def test_macro_parent_without_key(built: DbtProject) -> None:
    run = _run_spec_with(
        built,
        {"kiosks": "select 1 as kiosk_id", "scans": "select 1 as scan_id, 1 as kiosk_id"},
        {
            "kiosks.sql": "select 1 as kiosk_id",
            "scans.sql": "select 1 as scan_id, 1 as kiosk_id",
            "scans.yml": "version: 2\nmodels:\n  - name: scans\n    config:\n      meta:\n"
            "        rfm: {primary_key: scan_id}\n    columns:\n      - name: kiosk_id\n"
            "        data_tests:\n          - relationships:\n              arguments:\n"
            "                to: ref('kiosks')\n                field: kiosk_id\n",
        },
    )
    message = _expect_same_error(built, run)
    assert "model 'kiosks' has no primary key, but link 'scans.kiosk_id->kiosks'" in message


def test_spec_model_must_depend_on_graph_models(built: DbtProject) -> None:
    """A graph model missing from the `dbt_rfm:graph_models` var is an error, not a race."""
    run = _run_spec_with(
        built,
        {"extra": "select 1 as extra_id"},
        {
            "extra.sql": "select 1 as extra_id",
            "extra.yml": "version: 2\nmodels:\n  - name: extra\n    config:\n      meta:\n"
            "        rfm: {primary_key: extra_id}\n",
        },
    )
    assert not run.success
    assert (
        "model 'rfm_graph_spec' must run after the rfm graph models but does not depend on: "
        "extra; list every graph model in dbt_project.yml, vars: {'dbt_rfm:graph_models': "
        "[airports, department, employee, extra, flights, weather]}"
    ) in run.text


def test_empty_graph_gives_typed_empty_table(built: DbtProject) -> None:
    schema_yml: Path = built.path / "models" / "schema.yml"
    text = schema_yml.read_text()
    schema_yml.unlink()
    try:
        run = built.dbt("run", "--select", "rfm_graph_spec")
        assert run.success, run.text
    finally:
        schema_yml.write_text(text)
    with duckdb.connect(str(built.db)) as con:
        table = con.sql("select * from rfm_graph_spec").to_arrow_table()
    assert table.num_rows == 0
    assert tuple(table.schema.names) == SPEC_ROW_COLUMNS
    assert [str(t) for t in table.schema.types] == [
        "string", "string", "string", "int32", "string", "string", "int32", "bool",
        "string", "string", "int32", "string", "string",
    ]  # fmt: skip
    assert GraphSpec.from_rows(table.to_pylist()) == GraphSpec(tables=())
