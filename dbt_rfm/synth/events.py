"""Event processes: when events happen, which second parent they pick, what their past says.

Rates are self-exciting (Hawkes-like, per parent, simulated day by day over all parents at
once) on top of a parent-specific base rate (latent factors and an observed column), a
per-parent drift, weekly and yearly seasonality, and an active window (creation to churn).
So a parent's future events depend on its attributes and on its own recent past.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dbt_rfm.synth.values import gumbel_argmax, standardize


@dataclass(frozen=True)
class EventDraw:
    """Events of one table, sorted by time.

    Attributes:
        parent: int64[E] row index of each event's primary parent.
        day: float64[E] event time in days since the span start.
    """

    parent: np.ndarray
    day: np.ndarray


def simulate_rates(
    rng: np.random.Generator,
    drive: np.ndarray,
    observed: np.ndarray,
    born: np.ndarray,
    span_days: int,
    expected: int,
) -> EventDraw:
    """Draw the events of every parent over ``span_days`` days.

    Args:
        drive: float64[P, D] latent drivers of the parents.
        observed: float64[P] a standardized observed column of the parents (0 where null).
        born: float64[P] day each parent starts to be active (may be negative).
        span_days: length of the span in days.
        expected: expected number of events over all parents.

    Returns:
        The events, sorted by day.
    """
    p = drive.shape[0]
    s = standardize(drive @ rng.normal(size=drive.shape[1])) + rng.uniform(0, 0.8) * observed
    base = np.exp(rng.uniform(0.4, 1.2) * s)
    drift = rng.uniform(0, 1.2) * standardize(drive @ rng.normal(size=drive.shape[1]))
    churn_p = 1 / (1 + np.exp(rng.uniform(0.5, 2) * s + rng.normal(1, 1)))
    churns = rng.random(p) < churn_p
    died = np.where(churns, rng.uniform(np.maximum(born, 0), span_days), np.inf)
    t = np.arange(span_days, dtype=np.float64)
    season = np.exp(
        rng.uniform(0, 0.4) * np.sin(2 * np.pi * t / 7 + rng.uniform(0, 2 * np.pi))
        + rng.uniform(0, 0.5) * np.sin(2 * np.pi * t / 365.25 + rng.uniform(0, 2 * np.pi))
    )
    alive = (t[:, None] >= born[None, :]) & (t[:, None] < died[None, :])
    intensity = season[:, None] * base[None, :] * np.exp(drift[None, :] * t[:, None] / span_days)
    intensity *= alive
    eta = rng.uniform(0, 0.6)  # branching ratio of the self-excitation
    tau = rng.uniform(3, 30)  # its decay, in days
    total = float(intensity.sum())
    mu = expected * (1 - eta) / total if total > 0 else 0.0
    decay = np.exp(-1 / tau)
    excite = np.zeros(p)
    parents, days = [], []
    for day in range(span_days):
        lam = mu * intensity[day] + (eta / tau) * excite * alive[day]
        counts = rng.poisson(lam)
        excite = excite * decay + counts
        hit = np.flatnonzero(counts)
        if hit.size:
            parents.append(np.repeat(hit, counts[hit]))
            days.append(np.full(int(counts[hit].sum()), float(day)))
    if not parents:
        return EventDraw(np.zeros(0, np.int64), np.zeros(0))
    parent = np.concatenate(parents).astype(np.int64)
    day_f = np.concatenate(days) + time_of_day(rng, parent.size)
    order = np.argsort(day_f, kind="stable")
    return EventDraw(parent[order], day_f[order])


def previous_in_group(group: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Index of the previous row of the same group (by time), or -1.

    Args:
        group: int64[E] group of each row.
        day: float64[E] row times.

    Returns:
        int64[E].
    """
    order = np.lexsort((day, group))
    prev = np.full(group.size, -1, dtype=np.int64)
    same = group[order][1:] == group[order][:-1]
    prev[order[1:][same]] = order[:-1][same]
    return prev


def past_features(rng: np.random.Generator, group: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Features of each row's own past within its group, standardized.

    Columns: log days since the group's previous row (bursts), and a per-group random walk
    (a drifting mean: successive rows of one parent resemble each other more than the
    parent's static factors explain).

    Returns:
        float64[E, 2].
    """
    prev = previous_in_group(group, day)
    gap = np.where(prev >= 0, day - day[np.maximum(prev, 0)], 60.0)
    order = np.lexsort((day, group))
    steps = rng.normal(size=group.size)[order]
    walk_sorted = np.cumsum(steps)
    g = group[order]
    starts = np.r_[True, g[1:] != g[:-1]]
    base = np.maximum.accumulate(np.where(starts, np.arange(g.size), 0))
    offset = walk_sorted[base] - steps[base]
    walk = np.empty(group.size)
    walk[order] = (walk_sorted - offset) / np.sqrt(10.0)
    return np.column_stack([standardize(np.log1p(gap)), standardize(walk)])


#: Grid points of the shared shock processes over the events' time span.
SHOCK_GRID = 2048


def shock_features(
    rng: np.random.Generator, day: np.ndarray, group: np.ndarray | None
) -> np.ndarray:
    """Shocks shared by rows near in time, standardized and scaled. float64[E, 2].

    Column 0: one mean-reverting random process over time shared by every row of the table
    (a storm day that delays all flights); column 1: one such process per ``group`` (the
    rows' second parent: one airport's bad afternoon), zeros when ``group`` is None. The
    processes are AR(1) on a grid of :data:`SHOCK_GRID` points with a random time constant
    of 0.5 to 10 days, so a row's shock is visible in the values of its *recent siblings*
    (rows of the same group, or of the table, just before it), which the sampler reaches
    through a shared parent. A random scale per table (1 to 3) lets shocks dominate
    some tables and barely matter in others.
    """
    if day.size == 0:
        return np.zeros((0, 2))
    lo = float(day.min())
    step = max(float(day.max()) - lo, 1e-6) / (SHOCK_GRID - 1)
    rho = float(np.exp(-step / np.exp(rng.uniform(np.log(0.5), np.log(10.0)))))
    cell = np.minimum(((day - lo) / step).astype(np.int64), SHOCK_GRID - 1)

    def ar1(k: int) -> np.ndarray:  # float64[SHOCK_GRID, k], stationary unit variance
        x = rng.normal(size=(SHOCK_GRID, k))
        x[1:] *= np.sqrt(1.0 - rho**2)
        for i in range(1, SHOCK_GRID):
            x[i] += rho * x[i - 1]
        return x

    shared = ar1(1)[cell, 0]
    if group is None:
        own = np.zeros(day.size)
    else:
        ids, local = np.unique(group, return_inverse=True)
        own = ar1(ids.size)[cell, local]
    scale = rng.uniform(1.0, 3.0)
    return scale * np.column_stack([standardize(shared), standardize(own)])


def time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Fractions of a day in [0, 1): a random daily profile per table (a busy hour of random
    width over a uniform floor), so that the hour of an event can matter."""
    peak, width = rng.uniform(0, 1), rng.uniform(0.03, 0.2)
    busy = rng.random(n) < rng.uniform(0, 0.8)
    return np.where(busy, np.mod(peak + width * rng.normal(size=n), 1.0), rng.random(n))


def season_features(rng: np.random.Generator, day: np.ndarray) -> np.ndarray:
    """Yearly, weekly and daily phase of each time. float64[E] days -> float64[E, 5].

    Each table draws how much the season matters: the yearly and weekly columns are scaled by
    a random 0-1.5, the daily ones by 0-3, so in some tables the hour of an event is among
    its strongest drivers (as the scheduled hour is for a flight's delay) and in others it
    hardly matters.
    """
    yearly, daily = rng.uniform(0.0, 1.5), rng.uniform(0.0, 3.0)
    return np.column_stack(
        [
            yearly * np.sin(2 * np.pi * day / 365.25),
            yearly * np.cos(2 * np.pi * day / 365.25),
            yearly * np.sin(2 * np.pi * day / 7),
            daily * np.sin(2 * np.pi * day),
            daily * np.cos(2 * np.pi * day),
        ]
    )


def choose_second(
    rng: np.random.Generator,
    who: np.ndarray,
    day: np.ndarray,
    z_rows: np.ndarray,
    z_items: np.ndarray,
    popularity: np.ndarray,
) -> np.ndarray:
    """Pick a second parent (an item) per row: taste clusters, popularity and repeats.

    Args:
        who: int64[E] the rows' primary parents (repeats happen within one parent).
        day: float64[E] row times.
        z_rows: float64[E, D] latent factors of the rows' primary parents.
        z_items: float64[Q, D] latent factors of the candidate items.
        popularity: float64[Q] standardized observed signal of the items.

    Returns:
        int64[E] item index per row.
    """
    d = z_rows.shape[1]
    k = int(rng.integers(2, 8))
    taste = rng.normal(size=(d, k))
    cluster = gumbel_argmax(rng, z_rows @ taste, temp=0.7)
    affinity = rng.uniform(0.5, 2.0) * (z_items @ taste) + popularity[:, None]
    out = np.zeros(who.size, dtype=np.int64)
    for c in range(k):
        rows = np.flatnonzero(cluster == c)
        if rows.size:
            w = np.exp(affinity[:, c] - affinity[:, c].max())
            out[rows] = rng.choice(z_items.shape[0], size=rows.size, p=w / w.sum())
    prev = previous_in_group(who, day)
    repeat = (prev >= 0) & (rng.random(who.size) < rng.uniform(0, 0.6))
    for _ in range(4):  # repeats chain: follow up to four earlier rows of the same parent
        out[repeat] = out[prev[repeat]]
    return out
