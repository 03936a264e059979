"""Metrics of the accuracy benchmark against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from bench.accuracy.metrics import auroc, average_precision_at_k, mae, map_at_k, paired_gap
from dbt_rfm.errors import RfmError


def test_auroc_hand_computed() -> None:
    # Positives score 0.8, 0.4; negatives 0.6, 0.2, 0.1. Pairs (pos > neg): 0.8 beats all 3,
    # 0.4 beats 0.2 and 0.1 -> 5 of 6.
    y = np.array([1, 0, 1, 0, 0])
    s = np.array([0.8, 0.6, 0.4, 0.2, 0.1])
    assert auroc(y, s) == pytest.approx(5 / 6)


def test_auroc_ties_count_half() -> None:
    # pos {0.5, 0.9}, neg {0.5, 0.1}: (0.5 vs 0.5) tie = 1/2, (0.5 vs 0.1) = 1, 0.9: 2 -> 3.5/4
    assert auroc([1, 1, 0, 0], [0.5, 0.9, 0.5, 0.1]) == pytest.approx(3.5 / 4)
    assert auroc([1, 0, 1, 0], [3.0, 3.0, 3.0, 3.0]) == pytest.approx(0.5)


def test_auroc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.3
    s = np.round(rng.normal(size=300) + y, 1)  # rounding makes ties
    pos, neg = s[y], s[~y]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert auroc(y, s) == pytest.approx(pairs)
    assert auroc(y, -s) == pytest.approx(1 - pairs)


def test_auroc_rejects_one_class_and_nan() -> None:
    with pytest.raises(RfmError, match="both classes"):
        auroc([1, 1], [0.1, 0.2])
    with pytest.raises(RfmError, match="NaN"):
        auroc([1, 0], [np.nan, 0.2])


def test_mae_hand_computed() -> None:
    assert mae([1.0, 2.0, 4.0], [2.0, 2.0, 1.0]) == pytest.approx((1 + 0 + 3) / 3)
    with pytest.raises(RfmError):
        mae([1.0], [1.0, 2.0])


def test_average_precision_hand_computed() -> None:
    # relevant {a, c, x}; ranked a, b, c, d, e: hits at 1 (1/1) and 3 (2/3) -> (1 + 2/3) / 3
    assert average_precision_at_k(["a", "c", "x"], list("abcde"), 5) == pytest.approx(
        (1 + 2 / 3) / 3
    )
    # Only the first k count, and the denominator is min(|relevant|, k).
    assert average_precision_at_k(["e"], list("abcde"), 4) == 0.0
    assert average_precision_at_k(list("abcdefg"), list("abcde"), 5) == pytest.approx(1.0)
    # A repeated item counts once.
    assert average_precision_at_k(["a"], ["a", "a"], 5) == pytest.approx(1.0)


def test_map_at_k_means_over_entities() -> None:
    rel = [["a"], ["b"]]
    ranked = [["a", "b"], ["a", "b"]]  # AP 1 and 1/2
    assert map_at_k(rel, ranked, 5) == pytest.approx(0.75)
    with pytest.raises(RfmError):
        map_at_k(rel, ranked[:1], 5)


def test_paired_gap_is_the_metric_difference_with_an_interval_around_it() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(2000) < 0.3
    signal = y + rng.normal(0, 1, y.size)
    weaker = y + rng.normal(0, 2, y.size)
    gap, low, high = paired_gap("binary", y, signal, weaker, k=5)
    assert gap == pytest.approx(auroc(y, signal) - auroc(y, weaker))
    assert 0 < low < gap < high  # the better arm wins beyond noise
    same, low, high = paired_gap("binary", y, signal, signal + 1e-9 * rng.random(y.size), k=5)
    assert low <= same <= high and high - low < 0.01  # an arm against (almost) itself


def test_paired_gap_on_mean_metrics() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    gap, low, high = paired_gap("regression", y, y + 1.0, y, k=5)
    assert (gap, low, high) == (1.0, 1.0, 1.0)  # every row one unit worse
    relevant = [["a"], ["b"], ["c"]]
    gap, _, _ = paired_gap("ranking", relevant, [["a"], ["x", "b"], ["c"]], relevant, k=5)
    assert gap == pytest.approx(map_at_k(relevant, [["a"], ["x", "b"], ["c"]], 5) - 1.0)
    with pytest.raises(RfmError, match="unknown task kind"):
        paired_gap("multiclass", y, y, y, k=5)


def test_blend_ranks_keep_the_order_on_a_unit_scale() -> None:
    from bench.accuracy.blend import _ranks

    x = np.array([0.3, -2.0, 7.5, 0.31])
    r = _ranks(x)
    assert r.tolist() == [1 / 3, 0.0, 1.0, 2 / 3]
    y = np.array([0, 0, 1, 1], bool)
    assert auroc(y, r) == auroc(y, x)
    # a scale-free average: a predictor on a huge scale does not outvote the other
    a, b = np.array([0.0, 1.0, 2.0, 3.0]), np.array([3e6, 2e6, 1e6, 0.0])
    assert np.allclose((_ranks(a) + _ranks(b)) / 2, 0.5)
