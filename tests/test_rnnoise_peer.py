"""The RNNoise peer of the quality benchmark: its delay is measured, and removed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import rtsep
from rtsep.evaluate.rnnoise_peer import rnnoise_available, rnnoise_denoise

pytestmark = pytest.mark.skipif(not rnnoise_available(), reason="pyrnnoise is not installed")

EXAMPLE = Path(rtsep.__file__).parent / "examples" / "example_mix.flac"


def correlation_peak_lag(output: np.ndarray, reference: np.ndarray, span: int) -> int:
    """Lag in samples (-span..span) at which ``output`` correlates best with ``reference``."""
    body = slice(span, reference.size - span)
    scores = [np.dot(output[body.start + lag : body.stop + lag], reference[body]) for lag in
              range(-span, span + 1)]  # fmt: skip
    return int(np.argmax(scores)) - span


def test_compensated_output_is_aligned_with_the_input_and_as_long():
    mixture, rate = sf.read(EXAMPLE, dtype="float32")
    mixture = mixture if mixture.ndim == 1 else mixture.mean(axis=1)
    aligned = rnnoise_denoise(mixture, rate)
    raw = rnnoise_denoise(mixture, rate, compensate=False)
    assert aligned.shape == raw.shape == mixture.shape and np.isfinite(aligned).all()
    assert correlation_peak_lag(aligned, mixture, 400) == 0
    assert correlation_peak_lag(raw, mixture, 400) == 320  # 20 ms at 16 kHz


def test_rnnoise_lowers_stationary_noise():
    rate = 16000
    noise = (0.01 * np.random.default_rng(0).standard_normal(3 * rate)).astype(np.float32)
    out = rnnoise_denoise(noise, rate)
    second = slice(rate, 3 * rate)  # after its noise estimate settles
    assert np.mean(out[second] ** 2) < 0.1 * np.mean(noise[second] ** 2)
