"""generate(seed, config) -> SynthDB: a random relational database with causal structure.

Order of work: draw a schema (:mod:`dbt_rfm.synth.plan`); fill entity tables (latent factors
flow from dims to mains and along self-links); then event tables (self-exciting rates driven
by the parent's factors, an observed parent column and the parent's own past); then line
tables (rows of an event). Each row's value columns are noisy functions of its drivers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dbt_rfm.spec import ColumnSpec, GraphSpec, LinkSpec, TableSpec
from dbt_rfm.synth.config import SynthConfig
from dbt_rfm.synth.db import SynthDB
from dbt_rfm.synth.events import (
    choose_second,
    past_features,
    season_features,
    shock_features,
    simulate_rates,
)
from dbt_rfm.synth.plan import TablePlan, draw_plan, fk_columns, singular
from dbt_rfm.synth.values import US_PER_DAY, make_column, standardize


@dataclass
class _Rows:
    """A filled table while the database is built."""

    plan: TablePlan
    z: np.ndarray  # float64[N, D] latent factors
    day: np.ndarray | None  # float64[N] row time in days since the span start
    keys: dict[str, pa.Array]  # primary key columns
    fks: dict[str, pa.Array]  # link columns, in link order
    values: dict[str, pa.Array]
    observed: np.ndarray  # float64[N] one standardized observed signal (0 where null)
    parent: np.ndarray | None = None  # int64[N] row of the primary parent (event and line rows)

    def take(self, keep: np.ndarray) -> _Rows:
        """The rows at ``keep`` (int64[M], sorted)."""
        ix = pa.array(keep, pa.int64())
        return _Rows(
            self.plan,
            self.z[keep],
            None if self.day is None else self.day[keep],
            {k: a.take(ix) for k, a in self.keys.items()},
            {k: a.take(ix) for k, a in self.fks.items()},
            {k: a.take(ix) for k, a in self.values.items()},
            self.observed[keep],
            None if self.parent is None else self.parent[keep],
        )


def generate(seed: int, config: SynthConfig | None = None) -> SynthDB:
    """Generate one synthetic database; the same seed and config give the same database.

    Args:
        seed: seed of the only random generator used.
        config: ranges to draw from (defaults: :class:`SynthConfig`).

    Returns:
        The database; :func:`dbt_rfm.synth.db.check_db` holds for it.
    """
    cfg = config or SynthConfig()
    rng = np.random.default_rng(seed)
    plans = draw_plan(rng, cfg)
    span = int(rng.integers(cfg.min_span_days, cfg.max_span_days + 1))
    origin_day = np.datetime64(cfg.start, "D") + int(rng.integers(0, 3 * 365))
    origin_us = int(origin_day.astype("datetime64[us]").astype(np.int64))
    n_events = int(np.exp(rng.uniform(np.log(cfg.min_events), np.log(cfg.max_events))))
    event_plans = [p for p in plans if p.role in ("event", "line")]
    shares = rng.dirichlet(np.full(len(event_plans), 2.0))
    budget = {
        p.name: max(1.0, float(s) * n_events) for p, s in zip(event_plans, shares, strict=True)
    }
    rows: dict[str, _Rows] = {}
    for p in plans:
        if p.role in ("dim", "main"):
            rows[p.name] = _entity_rows(rng, cfg, p, rows, span, origin_us)
        elif p.role == "event":
            rows[p.name] = _event_rows(rng, cfg, p, rows, span, origin_us, budget[p.name])
        else:
            rows[p.name] = _line_rows(rng, cfg, p, rows, origin_us, budget[p.name])
    _cap(rng, rows, cfg.max_events)
    return _assemble(f"synth_{seed}", rows, origin_us)


def _keys(rng: np.random.Generator, p: TablePlan, n: int) -> dict[str, pa.Array]:
    if len(p.key) == 2 and p.role != "line":  # composite entity key: (code, number in code)
        codes = np.array(["NAM", "EUR", "APC", "LAT", "AFR", "OCE"])[: int(rng.integers(2, 7))]
        c = np.sort(rng.integers(0, codes.size, n))
        starts = np.searchsorted(c, c, side="left")
        return {
            p.key[0][0]: pa.array(codes[c]),
            p.key[1][0]: pa.array(np.arange(n) - starts + 1, pa.int64()),
        }
    ((name, dtype),) = p.key
    ids = np.sort(rng.choice(2**31 - 1, size=n, replace=False)) if n else np.zeros(0, np.int64)
    if dtype == "bigint":
        return {name: pa.array(ids.astype(np.int64) + 1, pa.int64())}
    prefix = singular(p.name)[:3]
    return {name: pa.array([f"{prefix}_{i:08x}" for i in ids], pa.string())}


def _take(keys: dict[str, pa.Array], idx: np.ndarray, names: list[str]) -> dict[str, pa.Array]:
    ix = pa.array(idx, pa.int64())
    return {new: keys[old].take(ix) for new, old in zip(names, keys, strict=True)}


def _values(
    rng: np.random.Generator,
    p: TablePlan,
    drive: np.ndarray,
    day: np.ndarray | None,
    origin_us: int,
) -> tuple[dict[str, pa.Array], np.ndarray]:
    times = None if day is None else origin_us + (day * US_PER_DAY).astype(np.int64)
    vals = {v.name: make_column(rng, v, drive, times, origin_us) for v in p.values}
    observed = np.zeros(drive.shape[0])
    for v in p.values:  # the first numeric or boolean column is the "observed" driver
        if v.stype in ("numerical", "boolean"):
            x = pc.cast(vals[v.name], pa.float64()).fill_null(np.nan).to_numpy()
            ok = ~np.isnan(x)
            if ok.any():
                observed[ok] = standardize(x[ok])
            break
    return vals, observed


def _entity_rows(
    rng: np.random.Generator,
    cfg: SynthConfig,
    p: TablePlan,
    rows: dict[str, _Rows],
    span: int,
    origin_us: int,
) -> _Rows:
    n, d = p.size, cfg.latent_dim
    z = rng.normal(size=(n, d))
    fks: dict[str, pa.Array] = {}
    keys = _keys(rng, p, n)
    if p.parent is not None:  # a main in a dim: factors flow from the dim
        dim = rows[p.parent]
        pop = np.exp(standardize(dim.z @ rng.normal(size=d)) + dim.observed)
        which = rng.choice(dim.z.shape[0], size=n, p=pop / pop.sum())
        z = 0.6 * dim.z[which] + 0.8 * z
        fks |= _take(dim.keys, which, [c for c, _ in fk_columns(dim.plan)])
    day = None
    if p.time_column is not None:  # created before or during the span
        day = np.where(
            rng.random(n) < 0.4, rng.uniform(-3 * span, 0, n), rng.uniform(0, 0.9 * span, n)
        )
    if p.self_link:
        order = np.argsort(day) if day is not None else np.arange(n)
        pos = np.arange(n)
        has = (pos > 0) & (rng.random(n) < rng.uniform(0.2, 0.6))
        ref = np.full(n, -1)
        ref[order[has]] = order[(rng.random(int(has.sum())) * pos[has]).astype(np.int64)]
        z = np.where((ref >= 0)[:, None], 0.5 * z[np.maximum(ref, 0)] + 0.87 * z, z)
        ix = pa.array(np.maximum(ref, 0), pa.int64())
        mask = pa.array(ref < 0)
        for new, old in zip([c for c, _ in fk_columns(p, self_link=True)], keys, strict=True):
            fks[new] = pc.if_else(mask, pa.scalar(None, keys[old].type), keys[old].take(ix))
    vals, observed = _values(rng, p, z, day, origin_us)
    return _Rows(p, z, day, keys, fks, vals, observed)


def _event_rows(
    rng: np.random.Generator,
    cfg: SynthConfig,
    p: TablePlan,
    rows: dict[str, _Rows],
    span: int,
    origin_us: int,
    budget: float,
) -> _Rows:
    par = rows[p.parent or ""]
    born = par.day if par.day is not None else np.zeros(par.z.shape[0])
    ev = simulate_rates(rng, par.z, par.observed, born, span, int(budget))
    return _child_rows(rng, cfg, p, rows, par, ev.parent, ev.day, origin_us)


def _line_rows(
    rng: np.random.Generator,
    cfg: SynthConfig,
    p: TablePlan,
    rows: dict[str, _Rows],
    origin_us: int,
    budget: float,
) -> _Rows:
    par = rows[p.parent or ""]
    n_par = par.z.shape[0]
    mean = float(np.clip(budget / max(n_par, 1), 1.3, 6.0))
    w = np.exp(0.5 * standardize(par.z @ rng.normal(size=par.z.shape[1])))
    count = 1 + rng.poisson((mean - 1) * w / w.mean()) if n_par else np.zeros(0, np.int64)
    parent = np.repeat(np.arange(n_par), count)
    day = (par.day if par.day is not None else np.zeros(n_par))[parent]
    day = day + rng.uniform(0, 30, parent.size) / 1440.0  # minutes after the event
    return _child_rows(rng, cfg, p, rows, par, parent, day, origin_us)


def _child_rows(
    rng: np.random.Generator,
    cfg: SynthConfig,
    p: TablePlan,
    rows: dict[str, _Rows],
    par: _Rows,
    parent: np.ndarray,
    day: np.ndarray,
    origin_us: int,
) -> _Rows:
    d = cfg.latent_dim
    n = parent.size
    z = 0.8 * par.z[parent] + 0.6 * rng.normal(size=(n, d))
    fks = _take(par.keys, parent, [c for c, _ in fk_columns(par.plan)])
    item = None
    if p.second is not None:
        sec = rows[p.second]
        item = choose_second(rng, parent, day, par.z[parent], sec.z, sec.observed)
        z = z + 0.5 * sec.z[item]
        fks |= _take(sec.keys, item, [c for c, _ in fk_columns(sec.plan)])
    if p.role == "line" and len(p.key) > 1:  # (parent key..., line_no)
        keys = {k: fks.pop(k) for k, _ in p.key[:-1]}
        line_no = np.arange(n) - np.searchsorted(parent, parent, side="left") + 1
        keys[p.key[-1][0]] = pa.array(line_no, pa.int64())
    else:
        keys = _keys(rng, p, n)
    shocks = shock_features(rng, day, item)
    drive = np.column_stack([z, past_features(rng, parent, day), season_features(rng, day), shocks])
    vals, observed = _values(rng, p, drive, day, origin_us)
    return _Rows(p, z, day, keys, fks, vals, observed, parent)


def _cap(rng: np.random.Generator, rows: dict[str, _Rows], max_events: int) -> None:
    """Thin event tables when the total is over the cap; lines go with their event."""
    total = sum(r.z.shape[0] for r in rows.values() if r.plan.role in ("event", "line"))
    if total <= max_events:
        return
    frac = max_events / total
    kept: dict[str, np.ndarray] = {}
    for name, r in list(rows.items()):
        n = r.z.shape[0]
        if r.plan.role == "event":
            keep = np.sort(rng.choice(n, int(n * frac), replace=False))
            kept[name] = np.zeros(n, dtype=bool)
            kept[name][keep] = True
            rows[name] = r.take(keep)
        elif r.plan.role == "line" and r.parent is not None:
            rows[name] = r.take(np.flatnonzero(kept[r.plan.parent or ""][r.parent]))


def _assemble(name: str, rows: dict[str, _Rows], origin_us: int) -> SynthDB:
    tables: dict[str, pa.Table] = {}
    specs, links = [], []
    for tname, r in rows.items():
        p = r.plan
        cols: dict[str, pa.Array] = dict(r.keys) | dict(r.fks)
        spec_cols = [ColumnSpec(c, _dtype(a), "key") for c, a in cols.items()]
        if p.time_column is not None and r.day is not None:
            us = origin_us + (r.day * 86_400).astype(np.int64) * 1_000_000
            cols[p.time_column] = pa.array(us, pa.int64()).cast(pa.timestamp("us"))
            spec_cols.append(ColumnSpec(p.time_column, "timestamp", "timestamp"))
        for v in p.values:
            cols[v.name] = r.values[v.name]
            spec_cols.append(ColumnSpec(v.name, v.data_type, v.stype))
        tables[tname] = pa.table(cols)
        specs.append(
            TableSpec(
                tname, f'"{tname}"', tuple(k for k, _ in p.key), p.time_column, tuple(spec_cols)
            )
        )
        for parent_name, is_self in ((p.parent, False), (p.second, False), (tname, True)):
            if parent_name is None or (is_self and not p.self_link):
                continue
            parent = rows[parent_name].plan
            child_cols = tuple(c for c, _ in fk_columns(parent, self_link=is_self))
            links.append(LinkSpec(tname, child_cols, parent_name, tuple(k for k, _ in parent.key)))
    return SynthDB(GraphSpec(tuple(specs), tuple(links)), tables, name)


def _dtype(arr: pa.Array) -> str:
    return {pa.int64(): "bigint", pa.string(): "varchar"}[arr.type]
