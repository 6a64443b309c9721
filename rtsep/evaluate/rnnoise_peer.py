"""RNNoise (``pyrnnoise``, a pretrained causal speech denoiser) as the peer of speech extraction.

RNNoise runs at 48 kHz on 480-sample frames. A 16 kHz mixture is resampled to 48 kHz and
back with soxr (whole-signal, delay-compensated), denoised frame by frame on one fresh state,
and its own delay is taken out: :data:`RNNOISE_DELAY_48K` samples, measured as the lag of the
cross-correlation peak between its output and its input on speech (``tests/test_rnnoise_peer.py``
checks it). ``pyrnnoise`` is a dev/bench dependency (``pip install rtsep[dev]``).
"""

from __future__ import annotations

import numpy as np

from .peer_frames import float_pointer, process_at_48k

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

    state = rnnoise.create()

    def process(source: np.ndarray, target: np.ndarray) -> None:
        rnnoise.lib.rnnoise_process_frame(state, float_pointer(target), float_pointer(source))

    try:
        return process_at_48k(
            mixture,
            sample_rate_hz,
            process,
            rnnoise.FRAME_SIZE,
            RNNOISE_DELAY_48K if compensate else 0,
            scale=INT16_SCALE,
        )
    finally:
        rnnoise.destroy(state)
