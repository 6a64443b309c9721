"""Causal STFT analysis and overlap-add synthesis, for whole signals and for streaming.

Frame ``t`` covers input samples ``[t*hop - (window - hop), t*hop + hop)`` (zeros before the
start), so it needs no future input. Synthesis frame ``t`` covers the same span; after frame
``t`` the output samples ``[t*hop - (window - hop), t*hop)`` are final. With a square-root
periodic Hann window on both sides and ``hop = window / 2`` the pair reconstructs exactly.

The transforms are products with fixed real DFT matrices rather than ``torch.fft`` calls, so
the ONNX export needs no FFT operator; at 256 samples this costs no more than an FFT would.
Spectra are ``(real, imag)`` pairs of real tensors.
"""

from __future__ import annotations

import torch
from torch import nn


class CausalStft(nn.Module):
    """Square-root-Hann STFT with ``hop = window / 2``.

    Args:
        window_samples: frame length in samples (the algorithmic latency).
        hop_samples: frame advance in samples; must be ``window_samples // 2``.
    """

    def __init__(self, window_samples: int, hop_samples: int) -> None:
        super().__init__()
        if window_samples != 2 * hop_samples:
            raise ValueError("CausalStft needs hop_samples == window_samples / 2")
        self.window_samples = window_samples
        self.hop_samples = hop_samples
        window = torch.hann_window(window_samples, periodic=True, dtype=torch.float64).sqrt()
        bins = window_samples // 2 + 1
        time = torch.arange(window_samples, dtype=torch.float64)
        angle = (
            2
            * torch.pi
            * torch.outer(time, torch.arange(bins, dtype=torch.float64))
            / window_samples
        )
        # Analysis: windowed frame [.., window] @ [window, bins] → real / imag parts.
        self.register_buffer(
            "analysis_real", (window[:, None] * torch.cos(angle)).float(), persistent=False
        )
        self.register_buffer(
            "analysis_imag", (-window[:, None] * torch.sin(angle)).float(), persistent=False
        )
        # Synthesis: inverse real DFT (Hermitian weights 1, 2, …, 2, 1) times the window.
        weight = torch.full((bins,), 2.0, dtype=torch.float64)
        weight[0] = 1.0
        weight[-1] = 1.0
        scale = weight[:, None] / window_samples * window[None, :]
        self.register_buffer(
            "synthesis_real", (scale * torch.cos(angle.T)).float(), persistent=False
        )
        self.register_buffer(
            "synthesis_imag", (-scale * torch.sin(angle.T)).float(), persistent=False
        )

    @property
    def history_samples(self) -> int:
        """Input samples a frame shares with the previous chunk (``window - hop``)."""
        return self.window_samples - self.hop_samples

    def analyse(self, signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spectrum of a signal preceded by ``history_samples`` of context.

        Args:
            signal: ``[batch, history + frames*hop]`` samples.
        Returns:
            ``(real, imag)``, each ``[batch, frames, bins]``.
        """
        if signal.shape[-1] == self.window_samples:  # one frame: keeps the exported graph simple
            frames = signal.unsqueeze(-2)
        else:
            frames = signal.unfold(-1, self.window_samples, self.hop_samples)
        return frames @ self.analysis_real, frames @ self.analysis_imag

    def synthesise(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        """Windowed time frames of a spectrum.

        ``real``, ``imag``: ``[..., frames, bins]`` → ``[..., frames, window]``.
        """
        return real @ self.synthesis_real + imag @ self.synthesis_imag

    def overlap_add(
        self, frames: torch.Tensor, carry: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Overlap-add windowed frames onto the tail left by the previous call.

        Args:
            frames: ``[..., n, window]`` windowed synthesis frames.
            carry: ``[..., window - hop]`` unfinished samples from the previous call.
        Returns:
            ``([..., n*hop] finished samples, [..., window - hop] new carry)``; the first
            finished sample is the first sample of ``carry``.
        """
        hop = self.hop_samples
        n = frames.shape[-2]
        first_halves = frames[..., :hop]
        second_halves = frames[..., hop:]
        # Sample block j (j = 0..n) receives the second half of frame j-1 and the first of j.
        padded_second = torch.cat([carry.unsqueeze(-2), second_halves], dim=-2)
        # (`* 0` rather than zeros_like keeps the output count dynamic in the ONNX export.)
        padded_first = torch.cat([first_halves, first_halves[..., :1, :] * 0], dim=-2)
        blocks = padded_second + padded_first
        finished = blocks[..., :n, :].flatten(-2)
        return finished, blocks[..., n, :]
