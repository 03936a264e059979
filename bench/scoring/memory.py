"""Peak RSS of ``rfm_runtime.score.score`` on 10k and 100k query anchors, each in a new process.

The query cells are a generator that repeats the cells of a few demo anchors under new entity
ids (optionally cut to the first ``cells_per_anchor`` cells of each anchor, to keep the run
short); the 100k anchors' cells are never materialised. The child drains the prediction
stream and reports its peak RSS: ``VmHWM`` of ``/proc/self/status``, the high-water mark of
its own address space. ``ru_maxrss`` (``getrusage``, self or children) is not used as the
figure: Linux carries the RSS high-water mark across fork + exec, so a child started by this
benchmark (whose parent holds torch, DuckDB and the demo, >1 GiB) reports the parent's peak.
It is kept in the results as ``ru_maxrss_mib`` for reference.

Child: ``python -m bench.scoring.memory CHILD_DIR ANCHORS ARTIFACT``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.feather as feather

from bench.scoring.common import CELL_ORDER, ROOT, THREADS

TARGET = "flight_delayed_15"
TASK = "binary"


def write_inputs(
    db: Path, folder: Path, templates: int, context: int, cells_per_anchor: int
) -> None:
    """Save template query cells, context cells and labels from the built demo as Feather."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db), read_only=True)
    con.execute("set enable_progress_bar = false")
    for role, n, name in (("query", templates, "templates"), ("context", context, "context")):
        sql = (
            "select c.*, row_number() over (partition by c.entity_id, c.anchor_time "
            f"order by {CELL_ORDER}) as pos from rfm_cells as c join "
            f"(select entity_id, anchor_time from rfm_anchors where target_name = '{TARGET}' "
            f"and role = '{role}' order by anchor_time, entity_id limit {n}) as a "
            "on c.entity_id = a.entity_id and c.anchor_time = a.anchor_time "
        )
        keep = f"where pos <= {cells_per_anchor}" if role == "query" and cells_per_anchor else ""
        cols = "* exclude (pos)"
        t = con.sql(f"select {cols} from ({sql}) as c {keep} order by {CELL_ORDER}")
        feather.write_feather(t.to_arrow_table(), str(folder / f"{name}.feather"))
    labels = con.sql(
        "select entity_id, anchor_time, label, label_class from rfm_labels "
        f"where target_name = '{TARGET}' order by anchor_time, entity_id limit {context}"
    ).to_arrow_table()
    feather.write_feather(labels, str(folder / "labels.feather"))
    con.close()


def synthetic_cells(templates: pa.Table, n: int, per_batch: int = 64) -> Iterator[pa.RecordBatch]:
    """CELLS batches of ``n`` anchors: the template anchors repeated under ids ``s0000000..``."""
    ids = templates.column("entity_id").to_pylist()
    starts = [0] + [i for i in range(1, len(ids)) if ids[i] != ids[i - 1]] + [len(ids)]
    parts = [templates.slice(a, b - a) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    col = templates.schema.get_field_index("entity_id")
    for first in range(0, n, per_batch):
        chosen = [parts[i % len(parts)] for i in range(first, min(n, first + per_batch))]
        table = pa.concat_tables(chosen)
        lengths = [p.num_rows for p in chosen]
        names = np.repeat([f"s{first + j:07d}" for j in range(len(chosen))], lengths)
        table = table.set_column(col, "entity_id", pa.array(names, pa.string()))
        yield from table.combine_chunks().to_batches()


def child(folder: Path, n: int, artifact: Path) -> None:
    """Score ``n`` synthetic query anchors, drain the stream, print a JSON summary."""
    from rfm_runtime.score import score
    from rfm_runtime.session import RfmSession

    rfm = RfmSession.open(artifact, threads=THREADS)
    templates = feather.read_table(str(folder / "templates.feather"))
    context = feather.read_table(str(folder / "context.feather"))
    labels = feather.read_table(str(folder / "labels.feather"))
    t0, rows = time.perf_counter(), 0
    for batch in score(
        rfm,
        context.to_batches(),
        labels,
        synthetic_cells(templates, n),
        TASK,
        TARGET,
        batch_size=64,
    ):
        rows += batch.num_rows
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    summary = {"anchors": n, "rows": rows, "wall_s": wall, "ru_maxrss_kib": rss}
    print(json.dumps(summary | {"vm_hwm_kib": vm_hwm_kib()}))


def vm_hwm_kib() -> int:
    """Peak resident set of this process's address space (KiB), from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def measure(folder: Path, n: int, artifact: Path) -> dict[str, Any]:
    """Run the child for ``n`` anchors in a fresh process; its peak RSS in MiB and its rate."""
    cmd = [sys.executable, "-m", "bench.scoring.memory", str(folder), str(n), str(artifact)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{err.decode()[-3000:]}")
    summary = json.loads(out.decode().strip().splitlines()[-1])
    if summary["rows"] != n:
        raise RuntimeError(f"memory child scored {summary['rows']} of {n} anchors")
    return {
        "anchors": n,
        "peak_rss_mib": summary["vm_hwm_kib"] / 1024,
        "ru_maxrss_mib": summary["ru_maxrss_kib"] / 1024,
        "anchors_per_s": n / summary["wall_s"],
    }


if __name__ == "__main__":
    child(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
