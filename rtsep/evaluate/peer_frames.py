"""What the 48 kHz frame-by-frame peers (RNNoise, DeepFilterNet3) share: a mixture at the
model's rate resampled to 48 kHz (soxr, whole-signal, delay-compensated), cut into frames for
a C ``process(in, out)`` call on one fresh state, the peer's own delay taken out, and back."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np
import soxr

PEER_RATE_HZ = 48000


def process_at_48k(
    mixture: np.ndarray,
    sample_rate_hz: int,
    process: Callable[[np.ndarray, np.ndarray], None],
    frame_samples: int,
    delay_48k: int,
    scale: float = 1.0,
) -> np.ndarray:
    """``mixture float32 [time]`` at ``sample_rate_hz`` through a 48 kHz frame processor.

    ``process(frame_in, frame_out)`` fills ``frame_out`` from ``frame_in`` (both contiguous
    float32 ``[frame_samples]``, state carried by the caller's object); samples are
    multiplied by ``scale`` on the way in and divided on the way out (RNNoise wants the int16
    scale). ``delay_48k`` samples of the processor's delay are removed, so the result is
    aligned with ``mixture``, as long and at its rate.
    """
    high = soxr.resample(mixture.astype(np.float32), sample_rate_hz, PEER_RATE_HZ)
    frames = -(-(high.size + delay_48k) // frame_samples)
    padded = np.zeros(frames * frame_samples, dtype=np.float32)
    padded[: high.size] = high * scale
    processed = np.empty_like(padded)
    for start in range(0, padded.size, frame_samples):
        source = np.ascontiguousarray(padded[start : start + frame_samples])
        target = np.empty_like(source)
        process(source, target)
        processed[start : start + frame_samples] = target
    aligned = processed[delay_48k : delay_48k + high.size] / scale
    low = soxr.resample(aligned, PEER_RATE_HZ, sample_rate_hz)
    out = np.zeros(mixture.size, dtype=np.float32)
    out[: min(low.size, mixture.size)] = low[: mixture.size]
    return out


def float_pointer(array: np.ndarray):
    """A ``float *`` to a contiguous float32 array's data."""
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
