"""Encoder-decoder attractor (EDA) network, run causally.

An LSTM encoder runs over the separator features and carries its state across chunks. On a
fixed grid of frames an LSTM decoder, started from the encoder output of that frame and fed
zeros, emits ``max_sources + 1`` attractors; each has an existence probability
``p = sigmoid(w·a + b)`` and the source count is the number of leading attractors with
``p >= 0.5`` (USE, after EEND-EDA).
"""

from __future__ import annotations

import torch
from torch import nn


class AttractorNetwork(nn.Module):
    def __init__(self, feature_dim: int, embedding_dim: int, max_sources: int) -> None:
        super().__init__()
        self.max_sources = max_sources
        self.encoder = nn.LSTM(feature_dim, embedding_dim, batch_first=True)
        self.decoder = nn.LSTM(embedding_dim, embedding_dim, batch_first=True)
        self.existence = nn.Linear(embedding_dim, 1)

    def encode(
        self, features: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``features [batch, frames, feature_dim]``, state ``[1, batch, embedding_dim]`` ×2.

        Returns ``(summaries [batch, frames, embedding_dim], hidden, cell)``.
        """
        summaries, (hidden, cell) = self.encoder(features, (hidden, cell))
        return summaries, hidden, cell

    def decode(self, summary: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attractors from encoder summaries.

        Args:
            summary: ``[m, embedding_dim]``.
        Returns:
            ``(attractors [m, max_sources + 1, embedding_dim],
            existence_logits [m, max_sources + 1])``.
        """
        steps = self.max_sources + 1
        zeros = summary.new_zeros(summary.shape[0], steps, summary.shape[1])
        attractors, _ = self.decoder(
            zeros, (summary.unsqueeze(0).contiguous(), torch.zeros_like(summary).unsqueeze(0))
        )
        return attractors, self.existence(attractors).squeeze(-1)
