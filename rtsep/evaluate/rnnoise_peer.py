"""RNNoise (``pyrnnoise``, a pretrained causal speech denoiser) as the peer of speech extraction.

RNNoise runs at 48 kHz on 480-sample frames. A 16 kHz mixture is resampled to 48 kHz and
back with soxr (whole-signal, delay-compensated), denoised frame by frame on one fresh state,
and its own delay is taken out: :data:`RNNOISE_DELAY_48K` samples, measured as the lag of the
cross-correlation peak between its output and its input on speech (``tests/test_rnnoise_peer.py``
checks it). ``pyrnnoise`` is a dev/bench dependency (``pip install rtsep[dev]``).
"""

from __future__ import annotations

import ctypes

import numpy as np
import soxr

RNNOISE_RATE_HZ = 48000
RNNOISE_DELAY_48K = 960  # samples (20 ms): two frames
INT16_SCALE = 32768.0  # RNNoise expects samples on the int16 scale


def rnnoise_available() -> bool:
    """Whether ``pyrnnoise`` and its bundled library load on this machine."""
    try:
        from pyrnnoise import rnnoise  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def rnnoise_denoise(
    mixture: np.ndarray, sample_rate_hz: int, compensate: bool = True
) -> np.ndarray:
    """``mixture float32 [time]`` at ``sample_rate_hz`` → RNNoise's output, same length and
    rate; with ``compensate`` sample-aligned with the input (its delay removed)."""
    from pyrnnoise import rnnoise

    frame = rnnoise.FRAME_SIZE
    high = soxr.resample(mixture.astype(np.float32), sample_rate_hz, RNNOISE_RATE_HZ)
    delay = RNNOISE_DELAY_48K if compensate else 0
    frames = -(-(high.size + delay) // frame)
    padded = np.zeros(frames * frame, dtype=np.float32)
    padded[: high.size] = high * INT16_SCALE
    denoised = np.empty_like(padded)
    state = rnnoise.create()
    try:
        for start in range(0, padded.size, frame):
            source = np.ascontiguousarray(padded[start : start + frame])
            target = np.empty_like(source)
            rnnoise.lib.rnnoise_process_frame(state, _pointer(target), _pointer(source))
            denoised[start : start + frame] = target
    finally:
        rnnoise.destroy(state)
    aligned = denoised[delay : delay + high.size] / INT16_SCALE
    low = soxr.resample(aligned, RNNOISE_RATE_HZ, sample_rate_hz)
    out = np.zeros(mixture.size, dtype=np.float32)
    out[: min(low.size, mixture.size)] = low[: mixture.size]
    return out


def _pointer(array: np.ndarray):
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
