"""Embedding cache: targets sharing anchors encode them once, with the same results."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("torch")

from rfm_runtime.embed_cache import EmbeddingCache  # noqa: E402
from rfm_runtime.score import score  # noqa: E402
from rfm_runtime.session import RfmSession  # noqa: E402
from rfm_runtime.token_stream import iter_token_batches  # noqa: E402
from rfm_runtime.tokenize import anchor_keys  # noqa: E402
from rfm_synthetic import export_small, label_table, make_cells  # noqa: E402

CTX_CELLS, CTX_Y = make_cells(30, seed=31)
Q_CELLS, _ = make_cells(17, seed=32, prefix="q")


class CountingSession:
    """Delegates to an RfmSession and counts the anchors sent to the encoder."""

    def __init__(self, inner: RfmSession) -> None:
        self.inner, self.encoded = inner, 0

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def encode(self, tokens):
        self.encoded += tokens.num_anchors
        return self.inner.encode(tokens)


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> RfmSession:
    prefix = tmp_path_factory.mktemp("art") / "small"
    export_small(prefix, seed=5)
    return RfmSession.open(prefix)


def _chunks(session: RfmSession, target_column: str | None = None, batch_size: int = 6):
    config = session.tokenizer_config(batch_size, target_column)
    return config, list(iter_token_batches(Q_CELLS.to_batches(max_chunksize=40), config))


def test_cached_embeddings_equal_direct_ones_and_skip_the_encoder(session: RfmSession) -> None:
    counting = CountingSession(session)
    cache = EmbeddingCache()
    config, chunks = _chunks(session)
    first = [cache.encode(counting, c.tokens, anchor_keys(c.anchors), config) for c in chunks]
    assert counting.encoded == 17 and (cache.hits, cache.misses) == (0, 17)
    # rebatched differently: every anchor is found, nothing is encoded again
    config7, chunks7 = _chunks(session, batch_size=7)
    again = [cache.encode(counting, c.tokens, anchor_keys(c.anchors), config7) for c in chunks7]
    assert counting.encoded == 17 and cache.hits == 17
    direct = np.concatenate([session.encode(c.tokens) for c in chunks])
    np.testing.assert_allclose(np.concatenate(first), direct, atol=1e-5)
    np.testing.assert_allclose(np.concatenate(again), direct, atol=1e-5)


def test_hidden_columns_are_part_of_the_key(session: RfmSession) -> None:
    counting = CountingSession(session)
    cache = EmbeddingCache()
    for column in (None, "amount", None):
        config, chunks = _chunks(session, column)
        for c in chunks:
            cache.encode(counting, c.tokens, anchor_keys(c.anchors), config)
    assert counting.encoded == 34 and cache.hits == 17


def test_a_full_cache_stops_growing_but_still_answers(session: RfmSession) -> None:
    counting = CountingSession(session)
    cache = EmbeddingCache(max_entries=10)
    config, chunks = _chunks(session)
    for _ in range(2):
        out = [cache.encode(counting, c.tokens, anchor_keys(c.anchors), config) for c in chunks]
    assert len(cache) == 10 and counting.encoded == 17 + 7
    direct = np.concatenate([session.encode(c.tokens) for c in chunks])
    np.testing.assert_allclose(np.concatenate(out), direct, atol=1e-5)


def test_two_targets_sharing_anchors_score_as_without_cache(session: RfmSession) -> None:
    labels = label_table(CTX_CELLS, CTX_Y)

    def run(cache: EmbeddingCache | None, counting: CountingSession, task: str) -> pa.Table:
        out = score(
            counting,  # type: ignore[arg-type]
            CTX_CELLS.to_batches(max_chunksize=64),
            labels,
            Q_CELLS.to_batches(max_chunksize=64),
            task,
            "t",
            batch_size=8,
            cache=cache,
        )
        return pa.Table.from_batches(list(out))

    cache, cached, plain = EmbeddingCache(), CountingSession(session), CountingSession(session)
    with_cache = [run(cache, cached, task) for task in ("binary", "regression")]
    without = [run(None, plain, task) for task in ("binary", "regression")]
    assert plain.encoded == 2 * (30 + 17) and cached.encoded == 30 + 17
    assert cache.hits == 30 + 17
    for a, b in zip(with_cache, without, strict=True):
        assert a["entity_id"].to_pylist() == b["entity_id"].to_pylist()
        for col in ("prediction", "probability"):
            x = np.array(a[col].to_pylist(), dtype=float)
            y = np.array(b[col].to_pylist(), dtype=float)
            np.testing.assert_allclose(x, y, atol=1e-5)
