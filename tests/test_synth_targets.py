"""Random predictive queries and anchor spines over synthetic databases."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from rfm_runtime.schema import ANCHORS

from dbt_rfm.pql import Target, validate
from dbt_rfm.synth import (
    LabelDB,
    SynthDB,
    anchor_spine,
    generate,
    random_targets,
    row_keys,
    target_anchors,
)

SEEDS = range(6)


def compute_labels(db: SynthDB, target: dict, anchors: pa.Table) -> pa.Table:
    """Labels through the project's label SQL, with the task's label in column ``label``."""
    with LabelDB(db) as ldb:
        got = ldb.labels(target | {"name": target.get("name", "t")}, anchors)
    column = {"multiclass": "label_class", "ranking": "label_items"}.get(target["task"], "label")
    return got.select(["entity_id", "anchor_time"]).append_column("label", got[column])


@pytest.fixture(scope="module")
def dbs() -> list[SynthDB]:
    return [generate(s) for s in SEEDS]


@pytest.fixture(scope="module")
def targets(dbs: list[SynthDB]) -> list[list[dict]]:
    return [random_targets(db, np.random.default_rng(i), 6) for i, db in enumerate(dbs)]


def test_targets_lift_and_validate(dbs: list[SynthDB], targets: list[list[dict]]) -> None:
    for db, ts in zip(dbs, targets, strict=True):
        assert len(ts) == 6
        assert len({t["name"] for t in ts}) == 6
        for raw in ts:
            target = Target.from_dict(raw)
            validate(target, db.spec)
            assert target.task == raw["task"]
            if "static" in raw:  # a value column of a table with a time column
                assert db.spec.table(raw["entity"]).time_column is not None
                assert raw["static"] in [c.name for c in db.spec.table(raw["entity"]).columns]
                continue
            agg = raw["aggregate"]
            assert 7 <= agg["end"] <= 90 and agg["start"] == 0 and agg["unit"] == "days"
            assert db.spec.table(agg["table"]).time_column is not None


def test_every_task_appears(targets: list[list[dict]]) -> None:
    tasks = {t["task"] for ts in targets for t in ts}
    assert tasks == {"binary", "regression", "multiclass", "ranking"}
    assert {"static" in t for ts in targets for t in ts} == {True, False}


def test_same_rng_same_targets(dbs: list[SynthDB], targets: list[list[dict]]) -> None:
    assert random_targets(dbs[1], np.random.default_rng(1), 6) == targets[1]
    assert random_targets(dbs[1], np.random.default_rng(99), 6) != targets[1]


def test_labels_are_not_degenerate(dbs: list[SynthDB], targets: list[list[dict]]) -> None:
    for db, ts in zip(dbs, targets, strict=True):
        for t in ts:
            anchors = target_anchors(db, t, np.random.default_rng(7))
            labels = compute_labels(db, t, anchors)
            assert labels.num_rows >= 30, t
            y = labels["label"]
            if t["task"] == "binary":
                rate = pc.mean(y).as_py()
                assert 0.02 <= rate <= 0.98, (t, rate)  # chosen at 5-95% on another sample
            elif t["task"] == "regression" or t["task"] == "multiclass":
                assert len(pc.unique(y)) > 1
            else:
                assert pc.min(pc.list_value_length(y)).as_py() >= 1


def test_anchor_spine_respects_time(dbs: list[SynthDB]) -> None:
    db = dbs[2]
    ev = next(t for t in db.spec.tables if t.time_column == "event_time")
    lk = db.spec.links_from(ev.name)[0]
    anchors, spine = anchor_spine(db, lk.parent, ev.name, 30, np.random.default_rng(0))
    assert anchors.schema == ANCHORS
    times = pc.unique(anchors["anchor_time"]).to_pylist()
    assert 1 < len(times) <= 8
    assert str(min(times).date()) == spine["start"] and str(max(times).date()) == spine["end"]
    last = pc.max(db.tables[ev.name][ev.time_column]).as_py()
    first = pc.min(db.tables[ev.name][ev.time_column]).as_py()
    for t in times:
        assert (last - t).days >= 30 and (t - first).days >= 29
        assert t.hour == 0 and t.minute == 0
    keys = row_keys(db.tables[lk.parent], db.spec.table(lk.parent).primary_key)
    assert pc.all(pc.is_in(anchors["entity_id"], value_set=keys)).as_py()


def test_target_anchors_follow_the_yaml_spine(dbs: list[SynthDB]) -> None:
    db = dbs[2]
    ev = next(t for t in db.spec.tables if t.time_column == "event_time")
    lk = db.spec.links_from(ev.name)[0]
    anchors, spine = anchor_spine(db, lk.parent, ev.name, 30, np.random.default_rng(0))
    again = target_anchors(
        db, {"entity": lk.parent, "anchors": {"spine": spine}}, np.random.default_rng(0)
    )
    assert again.equals(anchors)


def test_spine_keeps_only_entities_that_exist() -> None:
    # find a database whose entity has a creation time, with an event table below it
    for seed in range(40):
        db = generate(seed)
        for lk in db.spec.links:
            ent, child = db.spec.table(lk.parent), db.spec.table(lk.child)
            if ent.time_column and child.time_column == "event_time":
                anchors, _ = anchor_spine(
                    db, ent.name, child.name, 14, np.random.default_rng(0), max_entities=None
                )
                data = db.tables[ent.name]
                born = dict(
                    zip(
                        row_keys(data, ent.primary_key).to_pylist(),
                        data[ent.time_column].to_pylist(),
                        strict=True,
                    )
                )
                for row in anchors.to_pylist():
                    assert born[row["entity_id"]] <= row["anchor_time"]
                counts = pc.value_counts(anchors["anchor_time"]).field("counts").to_pylist()
                assert counts == sorted(counts), "more entities exist later"
                return
    pytest.fail("no database with a timed entity in 40 seeds")


def test_count_labels_match_sql(dbs: list[SynthDB]) -> None:
    """The label SQL agrees with an independent DuckDB query for a COUNT target."""
    db = dbs[2]
    ev = next(t for t in db.spec.tables if t.time_column == "event_time")
    lk = db.spec.links_from(ev.name)[0]
    target = {
        "name": "n30",
        "entity": lk.parent,
        "task": "regression",
        "aggregate": {
            "fn": "COUNT",
            "table": ev.name,
            "column": "*",
            "start": 0,
            "end": 30,
            "unit": "days",
        },
    }
    anchors, _ = anchor_spine(db, lk.parent, ev.name, 30, np.random.default_rng(3))
    ours = compute_labels(db, target, anchors)
    events = db.tables[ev.name].select([*lk.child_columns, ev.time_column])
    events = events.append_column("ek", row_keys(events, lk.child_columns))
    con = duckdb.connect()
    con.register("anchors", anchors)
    con.register("events", events)
    sql = f"""
        select a.entity_id, a.anchor_time, count(e.ek)::double as label
        from anchors a left join events e
          on e.ek = a.entity_id
         and e.{ev.time_column} > a.anchor_time
         and e.{ev.time_column} <= a.anchor_time + interval 30 day
        group by all order by all
    """
    theirs = con.sql(sql).to_arrow_table()
    ours = ours.sort_by([("entity_id", "ascending"), ("anchor_time", "ascending")])
    assert ours["entity_id"].to_pylist() == theirs["entity_id"].to_pylist()
    assert ours["label"].to_pylist() == theirs["label"].to_pylist()
    assert pc.sum(ours["label"]).as_py() > 0


def test_entity_filter_drops_inactive(dbs: list[SynthDB]) -> None:
    db = dbs[2]
    ev = next(t for t in db.spec.tables if t.time_column == "event_time")
    lk = db.spec.links_from(ev.name)[0]
    agg = {"fn": "COUNT", "table": ev.name, "column": "*", "start": 0, "end": 30, "unit": "days"}
    anchors, _ = anchor_spine(db, lk.parent, ev.name, 30, np.random.default_rng(3))
    plain = compute_labels(
        db, {"entity": lk.parent, "task": "regression", "aggregate": agg}, anchors
    )
    active = compute_labels(
        db,
        {
            "entity": lk.parent,
            "task": "regression",
            "aggregate": agg,
            "entity_filter": {
                "aggregate": agg | {"start": -30, "end": 0},
                "cast": {"op": ">", "value": 0},
            },
        },
        anchors,
    )
    assert 0 < active.num_rows < plain.num_rows
    # active entities buy more in the next window than the whole population (self-excitation)
    assert pc.mean(active["label"]).as_py() > pc.mean(plain["label"]).as_py()


def test_binary_cast_turns_values_into_zero_one(dbs: list[SynthDB]) -> None:
    db = dbs[2]
    ev = next(t for t in db.spec.tables if t.time_column == "event_time")
    lk = db.spec.links_from(ev.name)[0]
    agg = {"fn": "COUNT", "table": ev.name, "column": "*", "start": 0, "end": 30, "unit": "days"}
    anchors, _ = anchor_spine(db, lk.parent, ev.name, 30, np.random.default_rng(3))
    counts = compute_labels(
        db, {"entity": lk.parent, "task": "regression", "aggregate": agg}, anchors
    )["label"].to_numpy()
    binary = compute_labels(
        db,
        {"entity": lk.parent, "task": "binary", "aggregate": agg, "cast": {"op": ">", "value": 1}},
        anchors,
    )["label"].to_numpy()
    assert set(np.unique(binary)) <= {0.0, 1.0}
    np.testing.assert_array_equal(binary, (counts > 1).astype(float))
    assert pa.types.is_floating(pa.array(binary).type)


def test_sampled_cells_never_see_the_future(dbs: list[SynthDB], targets: list[list[dict]]) -> None:
    """End to end with the in-process sampler: no row time and no timestamp value of any
    sampled cell lies after its anchor."""
    from dbt_rfm.sampling import cells, sample

    for db, ts in list(zip(dbs, targets, strict=True))[:3]:
        anchors = target_anchors(db, ts[0], np.random.default_rng(0), max_entities=50)
        got = cells(db.spec, db.tables, sample(db.spec, db.tables, anchors, entity=ts[0]["entity"]))
        assert got.num_rows > anchors.num_rows
        assert pc.max(got["rel_days"]).as_py() <= 0
        stamps = got.filter(pc.equal(got["stype"], "timestamp"))
        assert stamps.num_rows > 0 and pc.max(stamps["num_value"]).as_py() <= 0
