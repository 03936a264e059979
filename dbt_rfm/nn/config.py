"""Hyper-parameters of the net, one frozen dataclass shared by training, export and checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from rfm_runtime.contract import TOKENIZER_CONTRACT_KEYS, check_keys
from rfm_runtime.errors import RfmError
from rfm_runtime.tokenize import TokenizerConfig

#: Attention mask kinds; head ``h`` of every block uses ``MASK_KINDS[h % 4]``.
MASK_KINDS = ("column", "feature", "neighbor", "full")


@dataclass(frozen=True)
class NetConfig:
    """Sizes of the encoder and the ICL head (defaults fit a 2-core CPU).

    Attributes:
        d_model: token and anchor embedding width d.
        n_blocks: transformer blocks L of the encoder.
        n_heads: attention heads per block (a multiple of 4: one mask kind per head).
        ffn_mult: feed-forward width as a multiple of d.
        max_hop: hops above this share the last hop embedding.
        n_freqs: sine/cosine frequencies for numbers and relative times.
        head_layers: cross-attention layers of the ICL head.
        max_classes: K, class capacity of the head (regression bins, multiclass classes).
        seq_len, value_buckets, value_hashes, name_buckets, name_slots: tokenizer contract.
    """

    d_model: int = 64
    n_blocks: int = 3
    n_heads: int = 4
    ffn_mult: int = 2
    max_hop: int = 4
    n_freqs: int = 8
    head_layers: int = 2
    max_classes: int = 16
    seq_len: int = 128
    value_buckets: int = 4096
    value_hashes: int = 2
    name_buckets: int = 1024
    name_slots: int = 4

    def __post_init__(self) -> None:
        if self.n_heads % len(MASK_KINDS) or self.d_model % self.n_heads:
            raise RfmError(
                f"NetConfig: n_heads ({self.n_heads}) must be a multiple of 4 and divide "
                f"d_model ({self.d_model})"
            )

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> NetConfig:
        """Build from a mapping; unknown keys are errors that suggest the right key."""
        check_keys(raw, [f.name for f in fields(cls)], "NetConfig")
        return cls(**raw)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-able), inverse of :meth:`from_dict`."""
        return asdict(self)

    def tokenizer(self, batch_size: int = 32, target_column: str | None = None) -> TokenizerConfig:
        """The tokenizer settings that feed this net."""
        kw = {k: getattr(self, k) for k in TOKENIZER_CONTRACT_KEYS}
        return TokenizerConfig(**kw, batch_size=batch_size, target_column=target_column)
