"""Oracle ideal ratio mask at the model's STFT: an upper bound for a magnitude-mask model.

The model estimates a real mask in [0, 1] per time-frequency bin of its causal STFT and
applies it to the mixture's spectrum. The oracle does the same with the ideal ratio mask
computed from the true parts (IRM with magnitude exponent 1):

    mask_j(t, f) = |P_j(t, f)| / sum_i |P_i(t, f)|

where ``P_i`` are the spectra of the parts that sum to the mixture (each source for
separation; target and rest for extraction).
"""

from __future__ import annotations

import numpy as np
import torch

from ..model.config import ModelConfig
from ..model.stft import CausalStft

#: Floor of the mask denominator (summed magnitudes), against division by zero.
MAGNITUDE_FLOOR = 1e-12


class OracleMask:
    """Ideal ratio masks at the STFT of ``config`` (window, hop, square-root Hann)."""

    def __init__(self, config: ModelConfig) -> None:
        self.stft = CausalStft(config.window_samples, config.hop_samples)

    @torch.no_grad()
    def __call__(self, parts: np.ndarray) -> np.ndarray:
        """Estimate each of ``parts float32 [n, time]`` from their sum by its IRM.

        Returns ``float32 [n, time]``, sample-aligned with the input. With one part the mask
        is 1 everywhere and the mixture comes back unchanged.
        """
        parts = torch.as_tensor(np.asarray(parts, np.float32))
        count, length = parts.shape
        stft = self.stft
        hop = stft.hop_samples
        padded = -(-length // hop) * hop + hop  # whole hops, plus one hop to finish the tail
        signals = torch.zeros(count + 1, stft.history_samples + padded)
        signals[:count, stft.history_samples : stft.history_samples + length] = parts
        signals[count] = signals[:count].sum(0)
        real, imag = stft.analyse(signals)  # [count + 1, frames, bins]
        magnitudes = torch.sqrt(real[:count] ** 2 + imag[:count] ** 2)
        masks = magnitudes / magnitudes.sum(0).clamp_min(MAGNITUDE_FLOOR)
        frames = stft.synthesise(masks * real[count], masks * imag[count])
        carry = torch.zeros(count, stft.history_samples)
        finished, _ = stft.overlap_add(frames, carry)
        start = stft.history_samples
        return finished[:, start : start + length].numpy()
