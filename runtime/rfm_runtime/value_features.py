"""Statistic-free extra features of a cell's value: the ``value_aux`` token field.

``sign(x) * log1p(|x|)`` (the main number encoding) keeps magnitudes but flattens values that
differ little relative to their size: build years 2000 and 2013, or pressures 1030.8 and
1031.4, land within 0.01 of each other. Two feature groups fix that without statistics (so no
row after the anchor can leak in, and any schema works):

- **Fourier features of the raw number** (numerical cells): ``sin`` and ``cos`` of
  ``2 pi x / P`` for periods ``P`` in :data:`PERIODS`, so nearby values get nearby features
  at every scale from a few units to tens of thousands;
- **calendar features of an absolute time** (timestamp cells, and the anchor token with the
  anchor time): hour of day, day of week and day of year as ``sin``/``cos`` pairs. Relative
  days (``rel_days``) cannot tell a 07:00 flight from a 19:00 one; these can.

Layout of ``value_aux`` (float32, width :data:`AUX_WIDTH`): ``[0, 2 * len(PERIODS))`` the
Fourier pairs, then :data:`CALENDAR_WIDTH` calendar columns; zeros where a group does not
apply.
"""

from __future__ import annotations

import numpy as np

#: Periods of the raw-value Fourier features, in the column's own units.
PERIODS = (3.0, 10.0, 30.0, 100.0, 300.0, 1_000.0, 3_000.0, 10_000.0)
FOURIER_WIDTH = 2 * len(PERIODS)
#: Cycles of the calendar features, in days: a day, a week, a year.
CYCLES_DAYS = (1.0, 7.0, 365.2425)
CALENDAR_WIDTH = 2 * len(CYCLES_DAYS)
AUX_WIDTH = FOURIER_WIDTH + CALENDAR_WIDTH

_US_PER_DAY = 86_400_000_000


def fourier(x: np.ndarray) -> np.ndarray:
    """Fourier features of raw numbers: float64 ``[N]`` -> float32 ``[N, FOURIER_WIDTH]``.

    Non-finite values give zeros (their null flag says why).
    """
    finite = np.isfinite(x)
    ang = 2 * np.pi * np.where(finite, x, 0.0)[:, None] / np.asarray(PERIODS)[None, :]
    out = np.concatenate([np.sin(ang), np.cos(ang)], axis=1)
    out[~finite] = 0.0
    return out.astype(np.float32)


def calendar(time_us: np.ndarray) -> np.ndarray:
    """Calendar features of absolute times: int64 or float64 ``[N]`` microseconds since the
    epoch (UTC, or naive wall-clock time) -> float32 ``[N, CALENDAR_WIDTH]``.

    Columns: ``sin, cos`` of the phase within each of :data:`CYCLES_DAYS`.
    """
    days = np.asarray(time_us, np.float64) / _US_PER_DAY
    ang = 2 * np.pi * np.mod(days[:, None], np.asarray(CYCLES_DAYS)[None, :]) / CYCLES_DAYS
    return np.concatenate([np.sin(ang), np.cos(ang)], axis=1).astype(np.float32)
