"""The in-context learning head: query anchors attend to labelled context anchors.

Every task is classification over at most K classes (see ``rfm_runtime.labels``). Context
tokens are ``W_c(embedding) + class_code[class] + value * w + task``; queries are
``W_q(embedding) + task``. ``head_layers`` cross-attention layers refine the queries; then
the class scores are

    logits[q, k] = log(vote[q, k] + eps) + <W_o(query), class_code[k]>

where ``vote`` is an attention-weighted share of context anchors in class k (a learned-kernel
nearest-neighbour vote, sensible even before training) and the second term is a learned
correction; plus ``ridge_scale[task] * log(clamp(ridge[q, k]))``, a ridge regression of the
context classes on the context embeddings fitted in each call (:func:`ridge_scores`).
Classes ``>= num_classes`` are masked out. Training permutes class indices per
episode for classification tasks, so the class codes act as arbitrary labels.
"""

from __future__ import annotations

import math

import torch
from rfm_runtime.contract import TASK_TYPES
from torch import Tensor, nn

from dbt_rfm.nn.config import NetConfig

EPS = 1e-3
MASKED = -30.0
#: Ridge penalty of the in-context linear readout, per context anchor (features standardised).
RIDGE_LAMBDA = 0.05
#: Newton-Schulz iterations of the ridge solve (exportable: matmuls only; converges for the
#: condition numbers RIDGE_LAMBDA allows with up to 256 features, see ``ridge_scores``).
RIDGE_ITERS = 24


def ridge_scores(query: Tensor, context: Tensor, onehot: Tensor) -> Tensor:
    """Closed-form ridge regression of the one-hot labels on the standardised context
    embeddings, evaluated at the queries: ``float32[Q, K]``, roughly class probabilities.

    Features are standardised with the context's mean and deviation, so the intercept is the
    class share and the penalty ``RIDGE_LAMBDA * N`` is on the same scale for any context size.
    ``(Z'Z + lambda I)^-1`` comes from Newton-Schulz iterations started at ``I / trace``: with
    every eigenvalue in ``[lambda, trace]`` the error shrinks as ``(1 - lambda/trace)^(2^k)``,
    converged to float32 precision after 24 iterations for up to 256 standardised features.
    """
    n = context.shape[0]
    mean = context.mean(dim=0, keepdim=True)
    std = torch.sqrt(((context - mean) ** 2).mean(dim=0, keepdim=True) + 1e-6)
    z = (context - mean) / std
    # queries outside the context's range (a later season) are held at its edge: a linear fit
    # says nothing beyond the data it saw
    zq = torch.maximum(torch.minimum((query - mean) / std, z.amax(dim=0)), z.amin(dim=0))
    share = onehot.mean(dim=0, keepdim=True)
    eye = torch.eye(z.shape[1], dtype=torch.float64, device=z.device)
    a = (z.transpose(0, 1) @ z).double() + (RIDGE_LAMBDA * n) * eye
    x = eye / (a * eye).sum()
    for _ in range(RIDGE_ITERS):  # in float64: the D x D solve is cheap, its rounding is not
        x = x @ (2.0 * eye - a @ x)
    w = (x @ (z.transpose(0, 1) @ (onehot - share)).double()).to(z.dtype)
    return zq @ w + share


class CrossLayer(nn.Module):
    """Queries attend to context: pre-norm multi-head cross-attention plus feed-forward."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm_q = nn.LayerNorm(d)
        self.norm_c = nn.LayerNorm(d)
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)
        self.norm_f = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, q: Tensor, c: Tensor) -> Tensor:
        """``q``: ``float32[Q, d]``, ``c``: ``float32[N, d]`` -> ``float32[Q, d]``."""
        nq, d = q.shape
        h = self.heads
        qh = self.q(self.norm_q(q)).reshape(nq, h, d // h).transpose(0, 1)
        k, v = self.kv(self.norm_c(c)).reshape(-1, 2, h, d // h).permute(1, 2, 0, 3)
        att = torch.softmax(qh @ k.transpose(-1, -2) / math.sqrt(d // h), dim=-1) @ v
        q = q + self.out(att.transpose(0, 1).reshape(nq, d))
        return q + self.ffn(self.norm_f(q))


class ICLHead(nn.Module):
    """``(query [Q, d], context [N, d], labels) -> class_logits, class_probs float32[Q, K]``."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.k = cfg.max_classes
        self.ctx_in = nn.Linear(d, d)
        self.query_in = nn.Linear(d, d)
        self.class_code = nn.Parameter(torch.randn(cfg.max_classes, d) / math.sqrt(d))
        self.value_in = nn.Linear(1, d)
        self.task = nn.Embedding(len(TASK_TYPES), d)
        self.layers = nn.ModuleList(CrossLayer(d, 4) for _ in range(cfg.head_layers))
        self.vote_q = nn.Linear(d, d)
        self.vote_k = nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)
        #: weight of the in-context ridge readout in the logits, per task type (0: off).
        self.ridge_scale = nn.Parameter(torch.zeros(len(TASK_TYPES)))

    def forward(
        self,
        query_embedding: Tensor,
        context_embedding: Tensor,
        context_class: Tensor,
        context_value: Tensor,
        task_type: Tensor,
        num_classes: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Score queries against the labelled context.

        Args:
            query_embedding: ``float32[Q, d]``.
            context_embedding: ``float32[N, d]``.
            context_class: ``int64[N]`` class index in ``[0, num_classes)``.
            context_value: ``float32[N]`` standardised label (regression), else 0.
            task_type: ``int64[1]`` index into ``TASK_TYPES``.
            num_classes: ``int64[1]`` C <= K.

        Returns:
            ``(class_logits, class_probs)``, each ``float32[Q, K]``; classes >= C get
            probability ~0.
        """
        classes = torch.arange(self.k, device=context_class.device)
        onehot = (context_class.unsqueeze(1) == classes.unsqueeze(0)).to(torch.float32)
        task = self.task(task_type)  # [1, d]
        c = (
            self.ctx_in(context_embedding)
            + onehot @ self.class_code
            + self.value_in(context_value.unsqueeze(1))
            + task
        )
        q = self.query_in(query_embedding) + task
        for layer in self.layers:
            q = layer(q, c)
        q = self.norm(q)
        d = q.shape[1]
        sim = self.vote_q(q) @ self.vote_k(context_embedding).transpose(0, 1) / math.sqrt(d)
        vote = torch.softmax(sim, dim=-1) @ onehot  # [Q, K]
        logits = torch.log(vote + EPS) + self.out(q) @ self.class_code.transpose(0, 1)
        ridge = ridge_scores(query_embedding, context_embedding, onehot)
        scale = self.ridge_scale[task_type]  # [1]
        logits = logits + scale * torch.log(torch.clamp(ridge, EPS, 1.0))
        active = classes.unsqueeze(0) < num_classes.unsqueeze(1)
        logits = torch.where(active, logits, torch.full_like(logits, MASKED))
        return logits, torch.softmax(logits, dim=-1)
