"""Anchor embeddings reused across the targets of one scoring run.

Cells are sampled per anchor ``(entity_id, anchor_time)``, not per target, so two targets
that share anchors (the demo's three plane targets share all their context and query
anchors) and hide the same entity columns tokenize them identically: their embeddings are
the same, and the encoder, most of the scoring time, need not run twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from rfm_runtime.session import RfmSession
from rfm_runtime.tokenize import AnchorKey, TokenBatch, TokenizerConfig

#: Default bound: 200k anchors of d = 64 float32 (~51 MB of embeddings plus dict overhead).
DEFAULT_MAX_ENTRIES = 200_000

CacheKey = tuple[tuple[str, ...], str, int]  # (hidden columns, entity_id, anchor_time us)


class EmbeddingCache:
    """Embeddings already computed in this run, keyed by hidden columns and anchor.

    Once it holds ``max_entries`` embeddings it stops adding (lookups go on), so its memory
    is bounded whatever the number of anchors.

    Attributes:
        hits: anchors served from the cache.
        misses: anchors encoded.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._emb: dict[CacheKey, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._emb)

    def holds(self, keys: Iterable[AnchorKey], config: TokenizerConfig) -> bool:
        """Whether every anchor of ``keys`` is cached for ``config``'s hidden columns.

        When it is, the anchors' cells need not be read at all: tokens made from no cells
        (:func:`rfm_runtime.token_stream.iter_token_batches` with ``anchors``) find every
        embedding here.
        """
        hidden = config.hidden_columns
        return all((hidden, e, t) in self._emb for e, t in keys)

    def encode(
        self,
        session: RfmSession,
        tokens: TokenBatch,
        keys: Sequence[AnchorKey],
        config: TokenizerConfig,
    ) -> np.ndarray:
        """Embeddings of ``tokens``, encoding only the anchors not seen before.

        Args:
            session: the opened artifact.
            tokens: ``[B, S]`` tokens of the anchors ``keys``, in the same order.
            keys: ``(entity_id, anchor_time_us)`` of each token row.
            config: the tokenizer settings the tokens were made with (its hidden columns
                are part of the key).

        Returns:
            ``float32[B, d]``.
        """
        hidden = config.hidden_columns
        full: list[CacheKey] = [(hidden, k[0], k[1]) for k in keys]
        out = np.empty((len(full), session.embedding_dim), np.float32)
        todo: list[int] = []
        for i, key in enumerate(full):
            cached = self._emb.get(key)
            if cached is None:
                todo.append(i)
            else:
                out[i] = cached
        self.hits += len(full) - len(todo)
        self.misses += len(todo)
        if todo:
            part = tokens if len(todo) == len(full) else tokens.take(np.array(todo))
            emb = session.encode(part)
            out[todo] = emb
            room = max(0, self.max_entries - len(self._emb))
            for i, e in zip(todo[:room], emb[:room], strict=True):
                self._emb[full[i]] = e
        return out
