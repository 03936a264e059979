"""dbt_rfm.manifest: the graph read from a parsed fixture project, and every error it raises."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from graph_shapes_project import FIXTURE_COLUMN_TYPES, copy_fixture

from dbt_rfm.errors import RfmError
from dbt_rfm.manifest import graph_spec_from_manifest, load_manifest
from dbt_rfm.rfm_meta import closest, ref_target
from dbt_rfm.spec import GraphSpec

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    project = copy_fixture(tmp_path_factory.mktemp("manifest"))
    run = project.dbt("parse")
    assert run.success, run.text
    return project.manifest


def _spec(manifest: Manifest, types: dict[str, list[tuple[str, str]]] | None = None) -> GraphSpec:
    return graph_spec_from_manifest(manifest, types if types is not None else FIXTURE_COLUMN_TYPES)


def _node(manifest: Manifest, name: str) -> dict[str, Any]:
    (node,) = [n for n in manifest["nodes"].values() if n["name"] == name]
    return node


def _tests_on(manifest: Manifest, model: str, test: str) -> list[dict[str, Any]]:
    uid = _node(manifest, model)["unique_id"]
    return [
        n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "test"
        and n.get("attached_node") == uid
        and (n.get("test_metadata") or {}).get("name") == test
    ]


def _rfm(manifest: Manifest, model: str) -> dict[str, Any]:
    return _node(manifest, model)["config"]["meta"].setdefault("rfm", {})


# -- the shapes ---------------------------------------------------------------------------


def test_inclusion_rule_keeps_declaring_models_only(parsed: Manifest) -> None:
    spec = _spec(parsed)
    # unrelated: unique + not_null but no link or meta.rfm; visits: only rfm_* data tests.
    assert [t.name for t in spec.tables] == [
        "airports",
        "department",
        "employee",
        "flights",
        "weather",
    ]


def test_two_links_from_one_child_to_the_same_parent(parsed: Manifest) -> None:
    to_airports = _spec(parsed).links_to("airports")
    assert {(lk.child, lk.child_columns) for lk in to_airports} == {
        ("flights", ("origin",)),
        ("flights", ("dest",)),
    }
    assert {lk.name for lk in to_airports} == {"flights.origin->airports", "flights.dest->airports"}


def test_composite_link_follows_parent_key_order(parsed: Manifest) -> None:
    spec = _spec(parsed)
    assert spec.table("weather").primary_key == ("origin", "time_hour")
    (link,) = spec.links_to("weather")
    # declared as columns [hour, origin] -> to_columns [time_hour, origin]
    assert link.child_columns == ("origin", "hour")
    assert link.parent_columns == ("origin", "time_hour")
    assert link.name == "flights.origin+hour->weather"


def test_self_link_and_cycle(parsed: Manifest) -> None:
    spec = _spec(parsed)
    names = {lk.name for lk in spec.links}
    assert "employee.manager_id->employee" in names
    assert {"employee.dept_id->department", "department.head_id->employee"} <= names
    # int widths are compatible: manager_id (integer) -> employee_id (bigint)
    emp = spec.table("employee")
    assert emp.column("manager_id").data_type == "integer"
    assert emp.column("employee_id").data_type == "bigint"


def test_keys_time_columns_and_stypes(parsed: Manifest) -> None:
    spec = _spec(parsed)
    flights, employee = spec.table("flights"), spec.table("employee")
    assert flights.primary_key == ("flight_id",)  # meta.rfm.primary_key
    assert employee.primary_key == ("employee_id",)  # unique + not_null tests
    assert spec.table("department").primary_key == ("dept_id",)  # column-level constraint
    assert flights.time_column == "departed_at"
    assert spec.table("airports").time_column is None  # static
    assert employee.time_column is None
    stypes = {c.name: c.stype for c in flights.columns}
    assert stypes == {
        "flight_id": "key",
        "departed_at": "timestamp",
        "hour": "key",
        "origin": "key",
        "dest": "key",
        "delay": "numerical",
        "route_code": "categorical",  # override of smallint
        "payload": "text",  # override of a type with no rule
        "delay_known_at": "timestamp",
    }  # note: excluded
    assert [c.name for c in flights.columns] == [
        c for c, _ in FIXTURE_COLUMN_TYPES["flights"] if c != "note"
    ]
    assert {c.name: c.stype for c in employee.columns}["hired_on"] == "timestamp"
    assert {c.name: c.stype for c in employee.columns}["is_remote"] == "boolean"
    assert "skills" not in {c.name for c in employee.columns}  # no stype rule: left out
    assert {c.name: c.stype for c in spec.table("airports").columns}["airport_name"] == (
        "categorical"
    )


def test_rows_roundtrip(parsed: Manifest) -> None:
    spec = _spec(parsed)
    assert GraphSpec.from_rows(spec.to_rows()) == spec


def test_column_types_by_relation_ignore_quotes_and_case(parsed: Manifest) -> None:
    by_relation = {
        _node(parsed, name)["relation_name"].upper(): cols
        for name, cols in FIXTURE_COLUMN_TYPES.items()
    }
    assert _spec(parsed, by_relation) == _spec(parsed)


def test_compiled_manifest_to_is_a_relation(parsed: Manifest) -> None:
    """After compilation dbt writes `to` as the rendered relation, not ref('x')."""
    m = copy.deepcopy(parsed)
    weather = _node(m, "weather")["relation_name"]
    _node(m, "flights")["constraints"][0]["to"] = weather
    assert _spec(m) == _spec(parsed)


def test_yaml_column_case_differs_from_warehouse(parsed: Manifest) -> None:
    m = copy.deepcopy(parsed)
    _rfm(m, "flights")["time_column"] = "DEPARTED_AT"
    assert _spec(m).table("flights").time_column == "departed_at"


def test_column_with_no_stype_rule_is_left_out(parsed: Manifest) -> None:
    m = copy.deepcopy(parsed)
    del _rfm(m, "flights")["stypes"]["payload"]
    names = [c.name for c in _spec(m).table("flights").columns]
    assert "payload" not in names and "delay" in names


def test_links_to_sources_are_not_rfm_links(parsed: Manifest) -> None:
    m = copy.deepcopy(parsed)
    (test,) = _tests_on(m, "flights", "relationships")
    test["test_metadata"]["kwargs"]["to"] = "source('raw', 'airports')"
    names = {lk.name for lk in _spec(m).links}
    assert "flights.dest->airports" in names and "flights.origin->airports" not in names
    # compiled form: `to` is the source's relation
    m["sources"] = {"source.graph_shapes.raw.airports": {"relation_name": '"db"."raw"."airports"'}}
    test["test_metadata"]["kwargs"]["to"] = '"db"."raw"."airports"'
    test["depends_on"]["nodes"].append("source.graph_shapes.raw.airports")
    assert {lk.name for lk in _spec(m).links} == names


# -- errors -------------------------------------------------------------------------------


def _unknown_model(m: Manifest) -> None:
    (test,) = _tests_on(m, "flights", "relationships")
    test["test_metadata"]["kwargs"]["to"] = "ref('airportz')"


def _not_a_ref(m: Manifest) -> None:
    _node(m, "flights")["columns"]["dest"]["constraints"][0]["to"] = "airports"


def _unknown_parent_column(m: Manifest) -> None:
    (test,) = _tests_on(m, "flights", "relationships")
    test["test_metadata"]["kwargs"]["field"] = "faaa"


def _unknown_child_column(m: Manifest) -> None:
    _node(m, "flights")["constraints"][0]["columns"] = ["hours", "origin"]


def _parent_without_key(m: Manifest) -> None:
    _node(m, "airports")["constraints"] = []


def _child_without_key(m: Manifest) -> None:
    del _rfm(m, "flights")["primary_key"]


def _time_column_not_time(m: Manifest) -> None:
    _rfm(m, "weather")["time_column"] = "origin"


def _duplicate_link(m: Manifest) -> None:
    dest = _node(m, "flights")["columns"]["dest"]["constraints"][0]
    _node(m, "flights")["columns"]["origin"]["constraints"] = [copy.deepcopy(dest)]


def _unknown_meta_key(m: Manifest) -> None:
    _rfm(m, "weather")["time_col"] = _rfm(m, "weather").pop("time_column")


def _not_the_parent_key(m: Manifest) -> None:
    _node(m, "flights")["constraints"][0]["to_columns"] = ["time_hour", "temp"]


def _column_count(m: Manifest) -> None:
    _node(m, "flights")["constraints"][0]["to_columns"] = ["origin"]


def _ambiguous_tested_key(m: Manifest) -> None:
    for name in ("unique", "not_null"):
        (test,) = _tests_on(m, "employee", name)
        twin = copy.deepcopy(test)
        twin["column_name"] = twin["test_metadata"]["kwargs"]["column_name"] = "dept_id"
        m["nodes"][test["unique_id"] + "_twin"] = twin


def _unknown_stype(m: Manifest) -> None:
    _rfm(m, "flights")["stypes"]["route_code"] = "categorial"


def _key_stype_override(m: Manifest) -> None:
    _rfm(m, "flights")["stypes"]["origin"] = "categorical"


def _exclude_key(m: Manifest) -> None:
    _rfm(m, "flights")["exclude"] = ["note", "dest"]


def _ephemeral(m: Manifest) -> None:
    _node(m, "airports")["config"]["materialized"] = "ephemeral"


def _meta_not_mapping(m: Manifest) -> None:
    _node(m, "airports")["config"]["meta"]["rfm"] = ["time_column"]


def _exclude_not_list(m: Manifest) -> None:
    _rfm(m, "flights")["exclude"] = {"note": True}


def _available_at_not_mapping(m: Manifest) -> None:
    _rfm(m, "flights")["available_at"] = ["delay"]


def _available_at_a_key(m: Manifest) -> None:
    _rfm(m, "flights")["available_at"] = {"dest": "delay_known_at"}


def _available_at_excluded(m: Manifest) -> None:
    _rfm(m, "flights")["available_at"] = {"delay": "delay_known_at", "note": "delay_known_at"}


def _available_at_gated_gate(m: Manifest) -> None:
    _rfm(m, "flights")["available_at"] = {
        "delay": "delay_known_at",
        "delay_known_at": "departed_at",
    }


def _available_at_not_a_timestamp_stype(m: Manifest) -> None:
    _rfm(m, "flights")["stypes"]["delay_known_at"] = "numerical"


ERRORS: list[tuple[Callable[[Manifest], None], str]] = [
    (
        _unknown_model,
        "model 'flights', column 'origin': a relationships test on model 'flights', column "
        "'origin' links to unknown model ref('airportz')",
    ),
    (_not_a_ref, "links to unknown model airports; 'to' must be ref('<model>') of a model"),
    (
        _unknown_parent_column,
        "model 'airports', column 'faaa': no such column in the warehouse (named by a "
        "relationships test on model 'flights', column 'origin', link 'flights.origin->airports')"
        " (did you mean 'faa'?)",
    ),
    (_unknown_child_column, "model 'flights', column 'hours': no such column in the warehouse"),
    (
        _parent_without_key,
        "model 'airports' has no primary key, but link 'flights.",
    ),
    (
        _child_without_key,
        "model 'flights' is in the rfm graph (it has meta.rfm) but has no primary key",
    ),
    (
        _time_column_not_time,
        "model 'weather', column 'origin': meta.rfm.time_column must be a date or timestamp; "
        "found varchar",
    ),
    (
        _duplicate_link,
        "link 'flights.origin->airports' is declared twice: by a foreign_key constraint on model"
        " 'flights' and by a relationships test on model 'flights', column 'origin'",
    ),
    (
        _unknown_meta_key,
        "model 'weather': unknown key 'time_col' under meta.rfm (did you mean 'time_column'?)",
    ),
    (_not_the_parent_key, "which are not its primary key (origin, time_hour)"),
    (_column_count, "link 'flights.hour+origin->weather': 2 child column(s) (hour, origin) but 1"),
    (_ambiguous_tested_key, "model 'employee': unique + not_null tests on several columns"),
    (_unknown_stype, "unknown stype 'categorial' in meta.rfm.stypes (did you mean 'categorical'?)"),
    (_key_stype_override, "model 'flights', column 'origin': is a key column"),
    (_exclude_key, "model 'flights', column 'dest': cannot be excluded, it is a key column"),
    (_ephemeral, "model 'airports' is ephemeral"),
    (_meta_not_mapping, "model 'airports': meta.rfm must be a mapping"),
    (_exclude_not_list, "model 'flights': meta.rfm.exclude must be a list of column names"),
    (_available_at_not_mapping, "model 'flights': meta.rfm.available_at must map column names"),
    (
        _available_at_a_key,
        "model 'flights', column 'dest': is a key column, so meta.rfm.available_at cannot use it",
    ),
    (
        _available_at_excluded,
        "model 'flights', column 'note': is excluded (meta.rfm.exclude), so meta.rfm.available_at",
    ),
    (
        _available_at_gated_gate,
        "model 'flights', column 'delay_known_at': meta.rfm.available_at uses it as a time, so it "
        "cannot have an availability time itself",
    ),
    (
        _available_at_not_a_timestamp_stype,
        "model 'flights', column 'delay_known_at': meta.rfm.available_at uses it as a time, so its "
        "stype must be 'timestamp'; found 'numerical'",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), ERRORS, ids=[f.__name__ for f, _ in ERRORS])
def test_declaration_errors(
    parsed: Manifest, mutate: Callable[[Manifest], None], message: str
) -> None:
    _spec(parsed)  # the fixture itself is valid
    m = copy.deepcopy(parsed)
    mutate(m)
    with pytest.raises(RfmError) as e:
        _spec(m)
    assert message in str(e.value)


def test_foreign_key_type_mismatch(parsed: Manifest) -> None:
    types = copy.deepcopy(FIXTURE_COLUMN_TYPES)
    types["airports"][0] = ("faa", "BIGINT")
    with pytest.raises(RfmError) as e:
        _spec(parsed, types)
    assert (
        "model 'flights', column 'dest' is varchar but model 'airports', column 'faa' is "
        "bigint; a foreign key must have the type of the key it points to" in str(e.value)
    )


def test_missing_warehouse_columns(parsed: Manifest) -> None:
    types = {k: v for k, v in FIXTURE_COLUMN_TYPES.items() if k != "weather"}
    with pytest.raises(RfmError, match="model 'weather': no columns found in the warehouse"):
        _spec(parsed, types)


def test_load_manifest_missing(tmp_path: Path) -> None:
    with pytest.raises(RfmError, match="no dbt manifest at"):
        load_manifest(tmp_path)


# -- helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "target"),
    [
        ("ref('planes')", (None, "planes")),
        ('ref("pkg", "planes")', ("pkg", "planes")),
        ("ref('planes', v=2)", (None, "planes")),
        ("source('raw', 'planes')", None),
        ('"db"."main"."planes"', None),
        (None, None),
    ],
)
def test_ref_target(to: Any, target: Any) -> None:
    assert ref_target(to) == target


def test_closest() -> None:
    keys = ["exclude", "primary_key", "stypes", "targets", "time_column"]
    assert closest("time_col", keys) == " (did you mean 'time_column'?)"
    assert closest("primary_keys", keys) == " (did you mean 'primary_key'?)"
    assert closest("stype", keys) == " (did you mean 'stypes'?)"
    assert closest("zzz", keys) == ""
