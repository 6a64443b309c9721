"""Cue network: label and text cues into the attractor space, and their fusion with features.

A query is a vector in the shared embedding space: an EDA attractor, a learned label
embedding, or a projected sentence embedding. For output ``n``, multi-head attention with the
separator features as query runs over all prompt tokens, each marked as "this output's prompt"
or "another prompt" (the cross-prompt context of TUSS); the attended context, plus a projection
of the output's own query, modulates the features (FiLM). The direct own-query path matters: the
attention alone gives every output the same context until its weights differentiate, and
training then settles on identical outputs (each the mixture).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .presence import PresenceGate
from .separator import residual_lstms


class CueEmbedder(nn.Module):
    """Label ids and text embeddings → queries ``[..., embedding_dim]``."""

    def __init__(self, label_count: int, text_dim: int, embedding_dim: int) -> None:
        super().__init__()
        self.labels = nn.Embedding(label_count, embedding_dim)
        self.text = nn.Sequential(
            nn.Linear(text_dim, 2 * embedding_dim),
            nn.GELU(),
            nn.Linear(2 * embedding_dim, embedding_dim),
        )

    def embed_labels(self, label_ids: torch.Tensor) -> torch.Tensor:
        return self.labels(label_ids)

    def embed_text(self, text_embeddings: torch.Tensor) -> torch.Tensor:
        return self.text(text_embeddings)


class CueFusion(nn.Module):
    """Conditions separator features on each of ``N`` queries.

    ``forward(features [B, T, D], queries [B, Tq, N, E])`` with ``Tq`` = ``T`` (queries that
    change per frame, as attractors do) or 1 (fixed cues) → ``[B, N, T, D]``.
    """

    def __init__(self, feature_dim: int, embedding_dim: int, heads: int) -> None:
        super().__init__()
        if feature_dim % heads:
            raise ValueError("feature_dim must be a multiple of heads")
        self.heads = heads
        self.query = nn.Linear(feature_dim, feature_dim)
        self.key = nn.Linear(embedding_dim, feature_dim)
        self.value = nn.Linear(embedding_dim, feature_dim)
        self.roles = nn.Parameter(torch.randn(2, embedding_dim) * 0.1)  # [other, own]
        self.own = nn.Linear(embedding_dim, feature_dim)
        self.film = nn.Linear(feature_dim, 2 * feature_dim)
        self.norm = nn.LayerNorm(feature_dim)

    def forward(self, features: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        dim = features.shape[-1]
        head_dim = dim // self.heads
        # Identity [N(out), N(token)] built from the data so that N stays dynamic in ONNX.
        position = torch.ones_like(queries[0, 0, :, 0]).cumsum(0)
        own = (position.unsqueeze(1) == position.unsqueeze(0)).to(queries.dtype)
        roles = own.unsqueeze(-1) * self.roles[1] + (1 - own).unsqueeze(-1) * self.roles[0]
        tokens = queries.unsqueeze(2) + roles  # [B, Tq, N(out), N(token), E]
        keys = self.key(tokens).unflatten(-1, (self.heads, head_dim))
        values = self.value(tokens).unflatten(-1, (self.heads, head_dim))
        q = self.query(features).unflatten(-1, (self.heads, head_dim))  # [B, T, H, d]
        scores = (q[:, :, None, None] * keys).sum(-1) / math.sqrt(head_dim)  # [B,T,N,N,H]
        weights = scores.softmax(dim=3)
        context = (weights.unsqueeze(-1) * values).sum(3).flatten(-2)  # [B, T, N, D]
        context = context + self.own(queries)
        gamma, beta = self.film(context).chunk(2, dim=-1)
        fused = self.norm(features).unsqueeze(2) * (1 + gamma) + beta
        return fused.permute(0, 2, 1, 3)


class MaskEstimator(nn.Module):
    """Per-output causal LSTMs and a magnitude mask head, optionally gated by cue presence.

    ``forward(fused [B, N, T, D], hidden, cell [layers, B*N, D])`` →
    ``(mask [B, N, T, bins], presence_logits [B, N, T] or None, hidden, cell)``; with a gate
    the mask is already scaled by ``sigmoid(presence_logits)``.
    """

    def __init__(
        self, feature_dim: int, frequency_bins: int, layers: int, presence_gate: bool = False
    ) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(feature_dim) for _ in range(layers))
        self.lstms = nn.ModuleList(
            nn.LSTM(feature_dim, feature_dim, batch_first=True) for _ in range(layers)
        )
        self.head = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, frequency_bins))
        self.presence = PresenceGate(feature_dim) if presence_gate else None

    @property
    def layers(self) -> int:
        return len(self.lstms)

    def forward(
        self, fused: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        x, hidden, cell = residual_lstms(self.norms, self.lstms, fused.flatten(0, 1), hidden, cell)
        mask = torch.sigmoid(self.head(x))
        presence = None
        if self.presence is not None:
            presence = self.presence(x)  # [B*N, T]
            mask = mask * torch.sigmoid(presence).unsqueeze(-1)
            presence = presence.unflatten(0, (fused.shape[0], -1))
        return mask.unflatten(0, (fused.shape[0], -1)), presence, hidden, cell
