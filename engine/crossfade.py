"""The crossfade the engine plays when what an output carries changes (a cue switch, or the
tracker moving a source to another channel).

A plain equal-power fade (``cos`` out, ``sin`` in) keeps the level of *uncorrelated* signals,
but the outputs of one mixture are often correlated (the same cue under new neighbours, two
masks of the same sound): a signal faded into itself peaks at √2 (+3 dB) half-way. So each
channel's fade is scaled by the level it should have (the equal-power sum of the two
levels) over the level it would have given the two signals' measured correlation: identical
signals pass unchanged, uncorrelated ones get the plain equal-power fade.
"""

from __future__ import annotations

import numpy as np


def crossfade(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Fade from ``before`` to ``after`` (float32 ``[channels, n]``) over the ``n`` samples.

    Gains: ``cos`` / ``sin`` of a phase going from 0 to π/2 (sample centres), times a
    per-channel level correction from the covariance of the two blocks, clipped at 0
    (anti-correlated signals dip mid-way, as with the plain fade). Returns float32.
    """
    phase = (np.arange(before.shape[1]) + 0.5) / before.shape[1] * (np.pi / 2)
    fade_out, fade_in = np.cos(phase), np.sin(phase)
    power_before = np.mean(np.square(before, dtype=np.float64), axis=1, keepdims=True)
    power_after = np.mean(np.square(after, dtype=np.float64), axis=1, keepdims=True)
    covariance = np.maximum(np.mean(before * after, axis=1, keepdims=True, dtype=np.float64), 0)
    intended = fade_out**2 * power_before + fade_in**2 * power_after
    correlated = intended + 2 * fade_out * fade_in * covariance
    level = np.sqrt(
        np.divide(intended, correlated, out=np.ones_like(intended), where=correlated > 0)
    )
    return ((before * fade_out + after * fade_in) * level).astype(np.float32)
