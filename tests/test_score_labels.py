"""Label encoding for the ICL head and decoding of its outputs (rfm_runtime.labels)."""

from __future__ import annotations

import numpy as np
import pytest
from rfm_runtime.errors import RfmError
from rfm_runtime.labels import decode, prepare_labels, query_classes


def test_regression_bins_are_quantiles_and_decode_to_their_centers() -> None:
    y = np.random.default_rng(1).lognormal(1, 1, size=200)
    ctx = prepare_labels("regression", y, 8)
    assert ctx.num_classes == 8 and ctx.keep.all()
    counts = np.bincount(ctx.classes, minlength=8)
    assert counts.min() >= 20  # quantile bins hold similar counts
    for k in range(8):
        assert ctx.centers[k] == pytest.approx(y[ctx.classes == k].mean())
    assert (np.diff(ctx.centers) > 0).all()
    np.testing.assert_array_equal(query_classes(ctx, y), ctx.classes)
    np.testing.assert_allclose(ctx.values.mean(), 0, atol=1e-5)
    out = decode(ctx, np.eye(8, dtype=np.float32)[[0, 7]])
    np.testing.assert_allclose(out.prediction, ctx.centers[[0, 7]])


def test_regression_decodes_to_the_median_bin_not_the_mean() -> None:
    y = np.arange(1.0, 9.0)  # 8 labels, one per bin
    ctx = prepare_labels("regression", y, 8)
    # 60% of the mass on bin 0 and 40% on bin 7: the median is bin 0, the mean ~3.8
    probs = np.zeros((1, 8), np.float32)
    probs[0, 0], probs[0, 7] = 0.6, 0.4
    assert decode(ctx, probs).prediction.tolist() == [ctx.centers[0]]


def test_constant_regression_labels_make_one_class() -> None:
    ctx = prepare_labels("regression", [3.0, 3.0, None, 3.0], 8)
    assert ctx.num_classes == 1 and ctx.keep.tolist() == [True, True, False, True]
    assert decode(ctx, np.full((2, 8), 0.125, np.float32)).prediction.tolist() == [3.0, 3.0]


def test_multiclass_keeps_the_most_frequent_classes() -> None:
    labels = ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] + [None]
    ctx = prepare_labels("multiclass", labels, 3)
    assert ctx.class_names == ("a", "b", "c")
    assert ctx.keep.tolist() == [True] * 10 + [False, False]
    assert query_classes(ctx, ["c", "d", None]).tolist() == [2, -1, -1]
    probs = np.array([[0.1, 0.7, 0.2, 0.0]], np.float32)
    out = decode(ctx, probs)
    assert out.predicted_class == ["b"]
    assert [s["class"] for s in out.class_scores[0]] == ["b", "c", "a"]


def test_binary_accepts_booleans_and_rejects_other_values() -> None:
    ctx = prepare_labels("binary", [True, False, None, 1], 16)
    assert ctx.classes.tolist() == [1, 0, 1] and ctx.num_classes == 2
    assert prepare_labels("ranking", [0, 1], 16).head_task == "binary"
    with pytest.raises(RfmError, match="labels 0/1"):
        prepare_labels("binary", [0, 1, 3], 16)
    with pytest.raises(RfmError, match="all labels null"):
        prepare_labels("binary", [None, None], 16)


def test_ranking_candidates_and_relevance() -> None:
    from rfm_runtime.ranking import decode_ranking, is_list_labels, prepare_ranking

    labels = [["JFK", "LAX"], None, [], ["LAX"], ["SFO", "LAX"]]
    assert is_list_labels(labels) and not is_list_labels([1.0, None])
    r = prepare_ranking(labels, max_candidates=2)
    assert r.items == ("LAX", "JFK")  # most frequent first, ties by name; SFO cut
    assert r.keep.tolist() == [True, False, True, True, True]
    assert r.relevance.tolist() == [[1, 1], [0, 0], [1, 0], [1, 0]]
    assert r.for_item(1).classes.tolist() == [1, 0, 0, 0]
    out = decode_ranking(r.items, np.array([[0.2, 0.9], [0.7, 0.1]]), top_k=1)
    assert out.predicted_class == ["JFK", "LAX"]
    assert out.class_scores == [[{"class": "JFK", "score": 0.9}], [{"class": "LAX", "score": 0.7}]]
    with pytest.raises(RfmError, match="all lists empty"):
        prepare_ranking([[], None])
