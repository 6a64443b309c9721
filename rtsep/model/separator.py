"""Causal separator: frame-local input projection followed by a stack of residual LSTMs.

LSTMs rather than GRUs: on the CPU, torch trains LSTMs through oneDNN 2-4× faster than GRUs
(measured on this project's sizes), and the ONNX export has a native LSTM node either way.
"""

from __future__ import annotations

import torch
from torch import nn


class CausalSeparator(nn.Module):
    """Maps mixture magnitudes to separator features, one frame at a time or all at once.

    Every layer is causal; the carried state is the LSTM hidden and cell state, each
    ``[layers, batch, feature_dim]``.
    """

    def __init__(self, frequency_bins: int, feature_dim: int, layers: int) -> None:
        super().__init__()
        self.input = nn.Linear(frequency_bins, feature_dim)
        self.input_norm = nn.LayerNorm(feature_dim)
        self.norms = nn.ModuleList(nn.LayerNorm(feature_dim) for _ in range(layers))
        self.lstms = nn.ModuleList(
            nn.LSTM(feature_dim, feature_dim, batch_first=True) for _ in range(layers)
        )

    @property
    def layers(self) -> int:
        return len(self.lstms)

    def forward(
        self, magnitude: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Args: ``magnitude [batch, frames, bins]``; ``hidden`` and ``cell`` are
        ``[layers, batch, feature_dim]``.

        Returns ``(features [batch, frames, feature_dim], hidden, cell)``.
        """
        x = self.input_norm(self.input(magnitude.pow(0.3)))
        return residual_lstms(self.norms, self.lstms, x, hidden, cell)


def residual_lstms(
    norms: nn.ModuleList,
    lstms: nn.ModuleList,
    x: torch.Tensor,
    hidden: torch.Tensor,
    cell: torch.Tensor,
    films: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pre-norm residual LSTM layers: ``x = x + lstm_i(norm_i(x))``, or with FiLM
    ``films[i] = (gamma, beta)`` (each broadcastable to ``x``):
    ``x = x + lstm_i(norm_i(x) * (1 + gamma) + beta)``.

    ``x [batch, frames, dim]``, ``hidden``/``cell [layers, batch, dim]`` → ``(x, hidden, cell)``.
    """
    new_hidden, new_cell = [], []
    for index, (norm, lstm) in enumerate(zip(norms, lstms)):
        state = (hidden[index : index + 1].contiguous(), cell[index : index + 1].contiguous())
        y = norm(x)
        if films is not None:
            gamma, beta = films[index]
            y = y * (1.0 + gamma) + beta
        y, (h, c) = lstm(y, state)
        x = x + y
        new_hidden.append(h)
        new_cell.append(c)
    return x, torch.cat(new_hidden, dim=0), torch.cat(new_cell, dim=0)
