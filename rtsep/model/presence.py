"""Cue-presence gate: each output says, frame by frame, whether its cue's sound is there.

A cue for a class that is not in the mixture should give silence. Learning that through the
mask alone is slow for a varied class (model v1, stage 4: an absent env cue still output
-7.5 dB re the mixture, ``rtsep evaluate``). The gate reads the output's own causal features
(after its per-output layers, so it has the evidence heard so far) and scales the output by
``sigmoid(logit)``; the trainer supervises the logit with whether the cued class has begun
by that frame (CATSE's cue-presence head, causal). With its weight at zero and bias
``OPEN_LOGIT`` it starts as a constant gain of :data:`INITIAL_GAIN` (-0.06 dB), so it can be
added to trained weights without changing what they separate (SI-SNR is unchanged by a
constant gain).
"""

from __future__ import annotations

import math

import torch
from torch import nn

OPEN_LOGIT = 5.0  # initial bias: the gate starts open
INITIAL_GAIN = 1.0 / (1.0 + math.exp(-OPEN_LOGIT))  # sigmoid(OPEN_LOGIT), 0.9933


class PresenceGate(nn.Module):
    """``features [..., D]`` → presence logits ``[...]`` (one per output and frame)."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(feature_dim)
        self.logit = nn.Linear(feature_dim, 1)
        with torch.no_grad():
            self.logit.weight.zero_()
            self.logit.bias.fill_(OPEN_LOGIT)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.logit(self.norm(features)).squeeze(-1)


def gate_complex_masks(
    gate: PresenceGate | None,
    features: torch.Tensor,
    mask_real: torch.Tensor,
    mask_imag: torch.Tensor,
    batch: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Complex masks ``[B * N, T, bins]`` of every output, scaled by ``sigmoid`` of the gate's
    logits on ``features [B * N, T, D]`` when there is a gate → ``(mask_real, mask_imag
    [B, N, T, bins], presence_logits [B, N, T] or None)``."""
    presence = None
    if gate is not None:
        presence = gate(features)  # [B*N, T]
        gain = torch.sigmoid(presence).unsqueeze(-1)
        mask_real, mask_imag = mask_real * gain, mask_imag * gain
        presence = presence.unflatten(0, (batch, -1))
    return mask_real.unflatten(0, (batch, -1)), mask_imag.unflatten(0, (batch, -1)), presence
