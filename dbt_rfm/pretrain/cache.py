"""On-disk cache of prepared tasks: one ``.npz`` per (database, preparation settings,
code).

Preparing a database (targets, labels, sampling, tokenizing) takes seconds; a resumed or
repeated run reads the same tasks back instead. Files live under ``<work_dir>/tasks/`` (the
default work dir, ``bench/.work``, is gitignored). Written atomically (temporary file, then
rename), so an interrupted run never leaves a half-written cache entry.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from dbt_rfm.pretrain.tasks import PreparedTask

_EXTRA = ("is_query", "anchor_us")

#: Bump when the layout of prepared tasks or their preparation changes.
CACHE_VERSION = 2


#: Source files whose code makes the prepared tasks (generator, labels, sampler, tokenizer):
#: their bytes are part of the cache key, so editing any of them invalidates the cache.
_CODE_GLOBS = (
    ("dbt_rfm", "synth/*.py"),
    ("dbt_rfm", "realdata/*.py"),
    ("dbt_rfm", "sampling/*.py"),
    ("dbt_rfm", "pql/*.py"),
    ("dbt_rfm", "labels.py"),
    ("dbt_rfm", "pretrain/tasks.py"),
    ("rfm_runtime", "*.py"),
)


@functools.cache
def code_fingerprint() -> str:
    """sha1 over the sources that make prepared tasks (see ``_CODE_GLOBS``)."""
    import rfm_runtime

    import dbt_rfm

    roots = {
        "dbt_rfm": Path(dbt_rfm.__file__).parent,
        "rfm_runtime": Path(rfm_runtime.__file__).parent,
    }
    digest = hashlib.sha1()
    for package, pattern in _CODE_GLOBS:
        for path in sorted(roots[package].glob(pattern)):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cache_key(descriptor: dict[str, Any]) -> str:
    """A file-name-safe key: the database name plus a hash of everything that made the tasks
    (the descriptor, :data:`CACHE_VERSION` and :func:`code_fingerprint`)."""
    stamp = {"version": CACHE_VERSION, "code": code_fingerprint()}
    text = json.dumps(descriptor | stamp, sort_keys=True, default=str)
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    return f"{descriptor.get('name', 'db')}-{digest}"


def save_tasks(path: Path, tasks: list[PreparedTask]) -> None:
    """Write tasks to ``path`` (``.npz``): arrays per task plus a JSON header."""
    arrays: dict[str, np.ndarray] = {}
    header = []
    for i, t in enumerate(tasks):
        for name, a in t.arrays.items():
            arrays[f"t{i}.{name}"] = a
        arrays[f"t{i}.is_query"] = t.is_query
        arrays[f"t{i}.anchor_us"] = t.anchor_us
        header.append(
            {
                "db": t.db,
                "name": t.name,
                "task": t.task,
                "top_k": t.top_k,
                "labels": t.labels,
                "query_time": t.query_time,
                "target": t.target,
            }
        )
    arrays["header"] = np.array(json.dumps(header))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds as bool
    os.replace(tmp, path)


def load_tasks(path: Path) -> list[PreparedTask]:
    """Inverse of :func:`save_tasks`."""
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(str(z["header"]))
        out = []
        for i, h in enumerate(header):
            prefix = f"t{i}."
            arrays = {
                k[len(prefix) :]: z[k]
                for k in z.files
                if k.startswith(prefix) and k[len(prefix) :] not in _EXTRA
            }
            extra = {name: z[prefix + name] for name in _EXTRA}
            out.append(PreparedTask(arrays=arrays, **extra, **h))
    return out
