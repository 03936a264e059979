"""Value columns from latent drivers: one random mechanism per column, with noise and nulls.

Every value is a noisy function of a *driver* matrix (the row's latent factors, plus for event
rows features of their own past and of the season), so values carry signal that flows along
links and through time.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dbt_rfm.synth.plan import ValuePlan

US_PER_DAY = 86_400_000_000

# fmt: off
CATEGORY_WORDS = (
    "alpha", "bronze", "silver", "gold", "platinum", "north", "south", "east", "west", "web",
    "mobile", "store", "phone", "partner", "email", "new", "active", "pending", "closed",
    "paused", "red", "green", "blue", "black", "white", "basic", "plus", "pro", "enterprise",
    "trial", "card", "cash", "wire", "voucher", "en", "fr", "de", "es", "ja", "pt"
)
TOKEN_WORDS = (
    "fast", "slow", "fresh", "classic", "spicy", "sweet", "large", "small", "eco", "premium",
    "budget", "family", "solo", "urban", "rural", "night", "morning", "holiday", "weekend",
    "bulk", "gift", "repeat", "first", "late", "early", "quiet", "loud", "local", "remote",
    "smart", "simple", "bright", "dark", "soft", "hard", "warm", "cold", "daily", "weekly",
    "rare"
)
# fmt: on


def standardize(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance (a constant becomes zeros). float64[N] -> float64[N]."""
    sd = float(x.std()) if x.size else 0.0
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x, dtype=np.float64)


def signal(rng: np.random.Generator, drive: np.ndarray) -> np.ndarray:
    """A random standardized direction of ``drive`` plus noise.

    Args:
        drive: float64[N, D] drivers.

    Returns:
        float64[N], unit variance; between 30% and 90% of its variance comes from ``drive``.
    """
    w = rng.normal(size=drive.shape[1])
    s = standardize(drive @ w)
    r2 = rng.uniform(0.3, 0.9)
    return np.sqrt(r2) * s + np.sqrt(1 - r2) * rng.normal(size=drive.shape[0])


def gumbel_argmax(rng: np.random.Generator, logits: np.ndarray, temp: float = 1.0) -> np.ndarray:
    """Sample one index per row of ``logits`` (float64[N, K]) -> int64[N]."""
    return np.asarray(np.argmax(logits + temp * rng.gumbel(size=logits.shape), axis=1))


def make_column(
    rng: np.random.Generator,
    plan: ValuePlan,
    drive: np.ndarray,
    times_us: np.ndarray | None,
    origin_us: int,
) -> pa.Array:
    """Draw one value column.

    Args:
        plan: the column's stype, data type and shape.
        drive: float64[N, D] drivers of the rows.
        times_us: int64[N] row times (microseconds since epoch), or None for static rows.
        origin_us: start of the database's span; static timestamps fall before it.

    Returns:
        Arrow array of length N with ``plan.null_rate`` of its values null.
    """
    n = drive.shape[0]
    s = signal(rng, drive)
    if plan.stype == "numerical":
        arr = _numerical(rng, plan.kind, s)
    elif plan.stype == "categorical":
        k = int(rng.integers(2, 11))
        words = rng.choice(np.array(CATEGORY_WORDS), size=k, replace=False)
        logits = drive @ rng.normal(size=(drive.shape[1], k)) + rng.normal(size=k)
        idx = gumbel_argmax(rng, logits * rng.uniform(0.5, 2.0))
        arr = pa.array(words[idx], pa.string())
    elif plan.stype == "boolean":
        p = 1 / (1 + np.exp(-(rng.uniform(1, 3) * s + rng.normal())))
        arr = pa.array(rng.random(n) < p, pa.bool_())
    elif plan.stype == "timestamp":
        if times_us is None:  # static row: a date years before the span
            lag_days = np.exp(rng.uniform(4, 7) + 0.5 * s)
            base = np.full(n, origin_us, dtype=np.int64)
        else:  # an event's earlier moment (requested before it happened)
            lag_days = np.exp(rng.uniform(-2, 3) + 0.7 * s)
            base = times_us
        us = base - (lag_days * 86_400).astype(np.int64) * 1_000_000
        arr = pa.array(us, pa.int64()).cast(pa.timestamp("us"))
    else:
        arr = _tokens(rng, drive, s)
    if plan.null_rate > 0:
        mask = pa.array(rng.random(n) < plan.null_rate)
        arr = pc.if_else(mask, pa.scalar(None, arr.type), arr)
    return arr


def _numerical(rng: np.random.Generator, kind: str, s: np.ndarray) -> pa.Array:
    if kind == "count":
        lam = np.exp(rng.uniform(-0.5, 2.5) + rng.uniform(0.3, 0.8) * s)
        return pa.array(rng.poisson(lam).astype(np.int64), pa.int64())
    if kind == "lognormal":
        v = np.exp(rng.uniform(0, 5) + rng.uniform(0.3, 1.2) * s)
    elif kind == "offset":  # large level, small spread: build years, pressures, prices
        level = np.exp(rng.uniform(3, 9))
        v = level + level * np.exp(rng.uniform(-7, -2)) * s
    else:
        v = rng.normal(0, 50) + np.exp(rng.uniform(-2, 4.5)) * s
    return pa.array(np.round(v, 2), pa.float64())


def _tokens(rng: np.random.Generator, drive: np.ndarray, s: np.ndarray) -> pa.Array:
    """Short texts of 1 to 3 tokens; the tokens and their number depend on the drivers."""
    n, d = drive.shape
    vocab = rng.choice(np.array(TOKEN_WORDS), size=int(rng.integers(8, 25)), replace=False)
    n_tok = np.clip(np.round(2 + 0.7 * s + rng.normal(0, 0.5, n)), 1, 3).astype(np.int64)
    parts = []
    for j in range(3):
        logits = drive @ rng.normal(size=(d, vocab.size)) * rng.uniform(0.5, 2.0)
        tok = vocab[gumbel_argmax(rng, logits)]
        parts.append(pa.array(np.where(n_tok > j, tok, None), pa.string()))
    return pc.binary_join_element_wise(*parts, " ", null_handling="skip")
