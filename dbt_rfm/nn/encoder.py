"""The relational encoder: cell tokens -> anchor embeddings, with masked attention.

Token embedding = hashed value + column-name and table-name features + stype + hop + numeric
features (value, relative time, null flags, and their sines and cosines) + the tokenizer's
``value_aux`` features (raw-value Fourier and calendar features) + the row's ``row_counts``
(how many sampled rows hang off it, in all and recently). Every block runs
multi-head attention where each head sees one mask kind (:data:`MASK_KINDS`), built as dense
boolean ``[B, S, S]`` masks from the node, parent and column ids (see :func:`build_masks`).
The anchor embedding is the mean of the entity row's tokens (node 0, the anchor token
included) after the last block, plus a linear map of the anchor time's calendar features (so
the hour, weekday and season of the anchor reach the in-context head directly). Plain matmul
attention: exports to ONNX and runs anywhere.
"""

from __future__ import annotations

import math

import torch
from rfm_runtime.tokenize import NUM_STYPES, ROW_COUNT_WIDTH
from rfm_runtime.value_features import AUX_WIDTH, CALENDAR_WIDTH
from torch import Tensor, nn

from dbt_rfm.nn.config import MASK_KINDS, NetConfig

NEG = -1e9
#: Masked scores sit at least this far below their row's maximum in the ONNX graph.
SOFTMAX_FLOOR = 60.0


def build_masks(node: Tensor, parent: Tensor, column: Tensor) -> Tensor:
    """Attention masks from token ids.

    Args:
        node: ``int64[B, S]`` row index within the anchor, -1 for padding.
        parent: ``int64[B, S]`` parent row index, -1 for none.
        column: ``int64[B, S]`` (table, column) index within the anchor.

    Returns:
        ``bool[B, 4, S, S]``, ``[b, k, i, j]`` True when token i may attend to token j under
        mask kind ``MASK_KINDS[k]``: column (same table and column), feature (j is in i's
        row or i's parent row), neighbor (j is in a child row of i's row), full. Padding is
        excluded, and every token may attend to itself, so no row is empty.
    """
    valid = node >= 0
    pair = valid.unsqueeze(2) & valid.unsqueeze(1)
    nq, nk = node.unsqueeze(2), node.unsqueeze(1)
    same_column = column.unsqueeze(2) == column.unsqueeze(1)
    feature = (nq == nk) | (parent.unsqueeze(2) == nk)
    neighbor = parent.unsqueeze(1) == nq
    pos = torch.arange(node.shape[1], device=node.device)
    eye = pos.unsqueeze(1) == pos.unsqueeze(0)
    masks = torch.stack([same_column, feature, neighbor, pair], dim=1)
    return (masks & pair.unsqueeze(1)) | eye


def attention_bias(node: Tensor, parent: Tensor, column: Tensor) -> Tensor:
    """Additive attention bias of the four mask kinds, built once per batch.

    Args:
        node, parent, column: ``int64[B, S]`` as in :func:`build_masks`.

    Returns:
        ``float32[B, 1, 4, S, S]``: 0 where :func:`build_masks` allows, :data:`NEG` elsewhere.
        It broadcasts over head groups: a block views its scores ``[B, H, S, S]`` as
        ``[B, H / 4, 4, S, S]``, so head ``h`` meets mask kind ``h % 4`` without a copy.
    """
    # arithmetic, not where(): onnxruntime's Where with broadcast scalars is ~5x slower
    allowed = build_masks(node, parent, column).to(torch.float32)
    return ((1.0 - allowed) * NEG).unsqueeze(1)


class TokenEmbedding(nn.Module):
    """Sum of a token's feature embeddings, then LayerNorm -> ``float32[B, S, d]``."""

    freqs: Tensor

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.values = nn.Embedding(cfg.value_buckets, d, padding_idx=0)
        self.names = nn.Embedding(cfg.name_buckets, d, padding_idx=0)
        self.column_proj = nn.Linear(d, d)
        self.table_proj = nn.Linear(d, d)
        self.stype = nn.Embedding(NUM_STYPES, d)
        self.hop = nn.Embedding(cfg.max_hop + 1, d)
        self.max_hop = cfg.max_hop
        freqs = torch.pow(2.0, torch.linspace(-2.0, 3.0, cfg.n_freqs))
        self.register_buffer("freqs", freqs, persistent=False)
        self.numeric = nn.Linear(4 + 4 * cfg.n_freqs, d)
        # zero at init: a net warm-started from a checkpoint without it starts where it was
        self.aux = nn.Linear(AUX_WIDTH, d)
        nn.init.zeros_(self.aux.weight)
        nn.init.zeros_(self.aux.bias)
        self.counts = nn.Linear(ROW_COUNT_WIDTH, d)  # zero at init, for the same reason
        nn.init.zeros_(self.counts.weight)
        nn.init.zeros_(self.counts.bias)
        self.norm = nn.LayerNorm(d)

    def _name(self, ids: Tensor) -> Tensor:
        # id 0 is the padding row, all zeros: no need to mask it out of the sum
        present = (ids > 0).to(torch.float32).sum(dim=-1, keepdim=True)
        return self.names(ids).sum(dim=-2) / present.clamp(min=1.0)

    def forward(self, t: dict[str, Tensor]) -> Tensor:
        """Embed tokens given as a dict of TokenBatch arrays (see rfm_runtime.tokenize)."""
        vn, rd = t["value_num"].unsqueeze(-1), t["rel_days"].unsqueeze(-1)
        angles = torch.cat([vn * self.freqs, rd * self.freqs], dim=-1)
        numeric = torch.cat(
            [vn, t["value_null"].unsqueeze(-1), rd, t["rel_null"].unsqueeze(-1)]
            + [torch.sin(angles), torch.cos(angles)],
            dim=-1,
        )
        x = (
            self.values(t["value_ids"]).sum(dim=-2)
            + self.column_proj(self._name(t["column_name_ids"]))
            + self.table_proj(self._name(t["table_name_ids"]))
            + self.stype(t["stype"])
            + self.hop(t["hop"].clamp(0, self.max_hop))
            + self.numeric(numeric)
            + self.aux(t["value_aux"])
            + self.counts(t["row_counts"])
        )
        return self.norm(x)


class MaskedBlock(nn.Module):
    """Pre-norm transformer block; head h attends under mask kind ``h % 4``."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.heads = cfg.n_heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(
            nn.Linear(d, cfg.ffn_mult * d), nn.GELU(), nn.Linear(cfg.ffn_mult * d, d)
        )

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        """``x``: ``float32[B, S, d]``; ``bias``: ``float32[B, 1, 4, S, S]`` (0 or -1e9).

        When exported to ONNX, the masked scores are lifted to ``row max - SOFTMAX_FLOOR``
        before the softmax: their weight stays ~1e-26 (zero at float32 precision), but
        onnxruntime's CPU softmax no longer meets subnormal floats, which made it ~8x slower.
        """
        b, s, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.norm1(x)).reshape(b, s, 3, h, d // h).permute(2, 0, 3, 1, 4)
        scores = (q * (1.0 / math.sqrt(d // h))) @ k.transpose(-1, -2)
        scores = scores.view(b, h // len(MASK_KINDS), len(MASK_KINDS), s, s) + bias
        if torch.onnx.is_in_onnx_export():
            scores = torch.maximum(scores, scores.amax(dim=-1, keepdim=True) - SOFTMAX_FLOOR)
        att = torch.softmax(scores, dim=-1).view(b, h, s, s) @ v
        x = x + self.out(att.transpose(1, 2).reshape(b, s, d))
        return x + self.ffn(self.norm2(x))


class RelationalEncoder(nn.Module):
    """TokenBatch arrays -> anchor embeddings ``float32[B, d]``.

    ``forward`` takes the TokenBatch fields positionally, in ``TokenBatch`` field order (the
    ONNX input order).
    """

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = TokenEmbedding(cfg)
        self.blocks = nn.ModuleList(MaskedBlock(cfg) for _ in range(cfg.n_blocks))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.readout = nn.Linear(cfg.d_model, cfg.d_model)
        # zero at init, like embed.aux: a net warm-started without it starts where it was
        self.anchor_time = nn.Linear(CALENDAR_WIDTH, cfg.d_model)
        nn.init.zeros_(self.anchor_time.weight)
        nn.init.zeros_(self.anchor_time.bias)

    def forward(
        self,
        stype: Tensor,
        hop: Tensor,
        node_index: Tensor,
        parent_index: Tensor,
        column_index: Tensor,
        table_name_ids: Tensor,
        column_name_ids: Tensor,
        value_ids: Tensor,
        value_num: Tensor,
        value_null: Tensor,
        rel_days: Tensor,
        rel_null: Tensor,
        value_aux: Tensor,
        row_counts: Tensor,
    ) -> Tensor:
        """Encode B anchors; shapes and dtypes as in ``rfm_runtime.tokenize.TokenBatch``."""
        t = {
            "stype": stype,
            "hop": hop,
            "table_name_ids": table_name_ids,
            "column_name_ids": column_name_ids,
            "value_ids": value_ids,
            "value_num": value_num,
            "value_null": value_null,
            "rel_days": rel_days,
            "rel_null": rel_null,
            "value_aux": value_aux,
            "row_counts": row_counts,
        }
        x = self.embed(t)
        bias = attention_bias(node_index, parent_index, column_index)
        for block in self.blocks:
            x = block(x, bias)
        x = self.norm(x)
        row0 = (node_index == 0).to(torch.float32).unsqueeze(-1)
        pooled = (x * row0).sum(dim=1) / row0.sum(dim=1).clamp(min=1.0)
        when = value_aux[:, 0, -CALENDAR_WIDTH:]  # the anchor token's calendar features
        return self.readout(pooled) + self.anchor_time(when)
