"""value_aux: raw-value Fourier and calendar features, and where the tokenizer puts them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from rfm_runtime.schema import CELLS
from rfm_runtime.tokenize import TokenizerConfig, signed_log1p, tokenize
from rfm_runtime.value_features import (
    AUX_WIDTH,
    CALENDAR_WIDTH,
    FOURIER_WIDTH,
    calendar,
    fourier,
)

T0 = dt.datetime(2024, 1, 1, 7, 0)  # a Monday, 07:00
US = 1_000_000


def test_fourier_separates_values_the_signed_log_merges() -> None:
    years = np.array([2000.0, 2013.0])
    assert np.ptp(signed_log1p(years)) < 0.01
    f = fourier(years)
    assert f.shape == (2, FOURIER_WIDTH) and f.dtype == np.float32
    assert np.abs(f[0] - f[1]).max() > 0.5
    assert (fourier(np.array([np.nan, np.inf])) == 0).all()


def test_calendar_phases() -> None:
    t0 = int(np.datetime64(T0, "us").astype(np.int64))
    hours = [t0 + h * 3600 * US for h in (0, 12, 24, 24 * 7)]
    c = calendar(np.array(hours))
    assert c.shape == (4, CALENDAR_WIDTH)
    day_sin, day_cos = c[:, 0], c[:, 3]
    assert np.allclose([day_sin[0], day_cos[0]], [-day_sin[1], -day_cos[1]], atol=1e-5)
    assert np.allclose(c[0, [0, 3]], c[2, [0, 3]], atol=1e-5)  # same hour, next day
    assert np.allclose(c[0, [1, 4]], c[3, [1, 4]], atol=1e-5)  # same weekday, next week
    assert not np.allclose(c[0, [1, 4]], c[2, [1, 4]], atol=1e-2)  # another weekday


def _cells(rows: list[dict]) -> pa.Table:
    base = {"entity_id": "e", "anchor_time": T0, "table_name": "t", "row_key": "e", "hop": 0}
    base |= {"parent_table": None, "parent_key": None, "text_value": None, "rel_days": 0.0}
    return pa.Table.from_pylist([base | r for r in rows], schema=CELLS)


def test_tokenizer_fills_value_aux_by_stype() -> None:
    cells = _cells(
        [
            {"column_name": "year", "stype": "numerical", "num_value": 2013.0},
            {"column_name": "at", "stype": "timestamp", "num_value": -0.5},  # 19:00 the day before
            {"column_name": "flag", "stype": "boolean", "num_value": 1.0},
            {"column_name": "kind", "stype": "categorical", "text_value": "x"},
            {"column_name": "gone", "stype": "numerical", "num_value": None},
        ]
    )
    tok = tokenize(cells, None, TokenizerConfig(seq_len=8))
    aux = tok.value_aux[0]
    assert tok.value_aux.shape == (1, 8, AUX_WIDTH) and tok.value_aux.dtype == np.float32
    t0 = int(np.datetime64(T0, "us").astype(np.int64))
    assert np.allclose(aux[0, FOURIER_WIDTH:], calendar(np.array([t0]))[0])  # anchor token
    assert (aux[0, :FOURIER_WIDTH] == 0).all()
    by_col = {c: i + 1 for i, c in enumerate(["year", "at", "flag", "kind", "gone"])}
    assert np.allclose(aux[by_col["year"], :FOURIER_WIDTH], fourier(np.array([2013.0]))[0])
    assert (aux[by_col["year"], FOURIER_WIDTH:] == 0).all()
    at = t0 - 12 * 3600 * US
    assert np.allclose(aux[by_col["at"], FOURIER_WIDTH:], calendar(np.array([at]))[0], atol=1e-6)
    for col in ("flag", "kind", "gone"):
        assert (aux[by_col[col]] == 0).all(), col
    assert (aux[6:] == 0).all()  # padding


def test_anchor_token_names_the_static_target_column() -> None:
    from rfm_runtime.hashing import name_ids

    cells = _cells([{"column_name": "dep_delay", "stype": "numerical", "num_value": 9.0}])
    plain = tokenize(cells, None, TokenizerConfig(seq_len=8))
    assert (plain.column_name_ids[0, 0] == 0).all()
    cfg = TokenizerConfig(seq_len=8, target_column=("dep_delay", "cancelled"))
    hidden = tokenize(cells, None, cfg)
    assert tuple(hidden.column_name_ids[0, 0]) == name_ids("dep_delay", 1024, 4)
    assert (hidden.stype[0, 1:] == 0).all()  # the target cell itself is gone
