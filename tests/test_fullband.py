"""Fullband synthesis: outputs at the device rate from the model's gains, band above 8 kHz kept.

The synthesis alone (:class:`FullbandSynthesis`, gains set by the test), then the engine in
file mode with :mod:`oracle`'s network, whose gains are ideal ratio masks of the true sources
at 16 kHz: what these tests check is the synthesis path's contract (frames aligned with the
model's, gains carried to the device bins, the band above 8 kHz given to the output whose
gains hold the top of the heard band), not a model's skill, which the shipped weights do not
have (≈ 3 dB extraction).
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from oracle import oracle_model
from scipy.signal import butter, sosfilt

from rtsep.engine.file_runner import run_file
from rtsep.engine.fullband import EXTENSION_FROM_HZ, FullbandSynthesis
from rtsep.engine.resampler import make_resampler
from rtsep.engine.runtime import EngineConfig

MODEL_RATE, WINDOW, HOP, BINS = 16000, 256, 128, 129
SECONDS = 2.0


def synthesis(rate_hz: int) -> FullbandSynthesis:
    delay = make_resampler(rate_hz, MODEL_RATE, 1).delay_samples
    return FullbandSynthesis(rate_hz, MODEL_RATE, WINDOW, HOP, delay)


def run_synthesis(rate_hz: int, signal: np.ndarray, gains_of_bin: np.ndarray) -> np.ndarray:
    """``signal [frames]`` through the synthesis with the same model gains ``[BINS]`` at every
    hop, fed and stepped in pieces as the engine does; returns the aligned output."""
    fb = synthesis(rate_hz)
    needed = 0  # frames until every signal sample is final
    while fb.grid.start(needed) < signal.size:
        needed += 1
    fb.push(signal)
    fb.push(np.zeros(fb.frame_samples, np.float32))
    carry, pieces, done = fb.carry(1), [], 0
    for size in itertools.cycle((1, 2, 4, 7)):
        if done == needed:
            break
        count = min(size, needed - done)
        done += count
        step = fb.next_frames(count)
        gains = np.broadcast_to(gains_of_bin.astype(np.complex64), (1, count, BINS))
        out, carry = fb.synthesise(step, gains, carry)
        pieces.append(out)
    out = np.concatenate(pieces, axis=1)[0, -fb.first_sample :]
    return out[: signal.size]


def white(rate_hz: int, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * rate_hz))).astype(
        np.float32
    )


def band_db(signal: np.ndarray, rate_hz: int, low_hz: float, high_hz: float) -> float:
    """Energy of ``signal`` between ``low_hz`` and ``high_hz``, in dB."""
    spectrum = np.abs(np.fft.rfft(signal.astype(np.float64))) ** 2
    hz = np.fft.rfftfreq(signal.size, 1.0 / rate_hz)
    return float(10 * np.log10(spectrum[(hz >= low_hz) & (hz < high_hz)].sum() + 1e-30))


def error_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Energy of ``estimate - reference`` relative to ``reference``, dB."""
    difference = estimate.astype(np.float64) - reference
    return float(10 * np.log10(np.sum(difference**2) / np.sum(reference.astype(np.float64) ** 2)))


def test_device_frames_follow_the_model_frames_to_half_a_sample():
    # 48 kHz: whole 384-sample hops, starting 1 ms (the input resampler) + one hop early.
    grid = synthesis(48000).grid
    assert [grid.start(t) for t in range(4)] == [-432, -48, 336, 720]
    assert (grid.frame_samples, grid.period_frames) == (768, 1)
    # 44.1 kHz: 8 ms is 352.8 samples; starts are rounded, hops repeat every 5 frames.
    grid = synthesis(44100).grid
    exact = [(Fraction(128 * t - 128 - 16) * Fraction(44100, 16000)) for t in range(11)]
    starts = [grid.start(t) for t in range(11)]
    assert all(abs(s - e) <= Fraction(1, 2) for s, e in zip(starts, exact))
    assert sorted(np.diff(starts[:6]).tolist()) == [352, 353, 353, 353, 353]
    assert starts[10] - starts[5] == starts[5] - starts[0] == 1764
    assert (grid.frame_samples, grid.period_frames) == (706, 5)


@pytest.mark.parametrize("rate_hz", [16000, 22050, 44100, 48000])
def test_unit_gains_give_back_the_input_and_zero_gains_silence(rate_hz):
    signal = white(rate_hz)
    assert error_db(run_synthesis(rate_hz, signal, np.ones(BINS)), signal) < -100
    assert np.abs(run_synthesis(rate_hz, signal, np.zeros(BINS))).max() == 0


@pytest.mark.parametrize("rate_hz", [44100, 48000])
def test_bins_below_6khz_take_the_model_gain_and_above_the_reference_band_gain(rate_hz):
    signal = white(rate_hz, seconds=2.0)
    hz = np.arange(BINS) * MODEL_RATE / WINDOW
    low = (hz < 3000).astype(float)  # keeps 0-3 kHz: nothing of the 4-6 kHz reference band
    out = run_synthesis(rate_hz, signal, low)
    assert abs(band_db(out, rate_hz, 500, 2500) - band_db(signal, rate_hz, 500, 2500)) < 0.1
    assert band_db(out, rate_hz, 3500, rate_hz / 2) < band_db(signal, rate_hz, 3500, 6000) - 40
    out = run_synthesis(rate_hz, signal, 1 - low)  # the complement keeps the band above 8 kHz
    high = band_db(out, rate_hz, 8000, rate_hz / 2) - band_db(signal, rate_hz, 8000, rate_hz / 2)
    assert abs(high) < 0.1
    half = run_synthesis(rate_hz, signal, 0.5 * (1 - low))  # a gain of 0.5 there: -6 dB
    edge = band_db(half, rate_hz, EXTENSION_FROM_HZ, rate_hz / 2)
    assert abs(edge - band_db(signal, rate_hz, EXTENSION_FROM_HZ, rate_hz / 2) + 6.02) < 0.1


def scene(rate_hz: int) -> dict[str, np.ndarray]:
    """2 s of broadband sources, ``float32 [frames]`` per label: ``speech`` a voiced tone
    complex below 4 kHz (nothing above 8 kHz), ``env`` white-noise bursts (full band) and
    cymbals (noise above 5 kHz, decaying), ``music`` a sawtooth chirp (harmonics to Nyquist)."""
    n = int(SECONDS * rate_hz)
    t = np.arange(n) / rate_hz
    rng = np.random.default_rng(1)
    f0 = 150.0
    voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, int(4000 / f0)))
    voice *= 0.05 * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    env = np.zeros(n)
    for onset in (0.2, 0.7, 1.7):
        span = slice(int(onset * rate_hz), int((onset + 0.12) * rate_hz))
        env[span] += 0.1 * rng.standard_normal(span.stop - span.start)
    cymbal = sosfilt(butter(4, 5000, "highpass", fs=rate_hz, output="sos"), rng.standard_normal(n))
    for onset in (0.45, 1.45):
        start = int(onset * rate_hz)
        decay = np.exp(-np.arange(n - start) / (0.08 * rate_hz))
        env[start:] += 0.2 * cymbal[start:] * decay
    chirp = np.zeros(n)
    span = slice(int(0.95 * rate_hz), int(1.3 * rate_hz))
    local = t[span] - t[span.start]
    phase = 200 * local + 0.5 * 1700 * local**2  # 200 Hz to 800 Hz in 0.35 s
    chirp[span] = 0.1 * (2 * (phase % 1.0) - 1)
    sources = {"speech": voice, "env": env, "music": chirp}
    return {label: signal.astype(np.float32) for label, signal in sources.items()}


@pytest.fixture(scope="module", params=[44100, 48000], ids=["44k1", "48k"])
def oracle_scene(request):
    rate_hz = request.param
    sources = scene(rate_hz)
    return rate_hz, sources, sum(sources.values()), oracle_model(sources, rate_hz)


def separate(oracle_scene, cues, mode="extract", residual=False, backend="torch"):
    rate_hz, _, mixture, model = oracle_scene
    config = EngineConfig(block_samples=128, backend=backend, residual=residual)
    return run_file(model, mixture[None], rate_hz, config, cues, mode).outputs


def test_cues_and_residual_add_up_to_the_mixture_at_full_band(oracle_scene):
    rate_hz, _, mixture, _ = oracle_scene
    outputs = separate(oracle_scene, ["speech", "env"], residual=True)
    assert outputs.shape == (3, mixture.size)
    assert error_db(outputs.sum(axis=0), mixture) < -60
    top = (8000, rate_hz / 2)
    residual_db = band_db(outputs[2], rate_hz, *top)
    assert residual_db < band_db(mixture, rate_hz, *top) - 10  # the cues took the high band


def test_a_cue_keeps_the_high_band_of_the_broadband_source_it_extracts(oracle_scene):
    rate_hz, sources, mixture, _ = oracle_scene
    top = (8000, rate_hz / 2)
    env, music = separate(oracle_scene, ["env", "music"])
    assert band_db(env, rate_hz, *top) >= band_db(sources["env"], rate_hz, *top) - 6
    assert band_db(music, rate_hz, *top) >= band_db(sources["music"], rate_hz, *top) - 6
    # And the band is theirs: what env keeps above 8 kHz is env, not the chirp.
    assert error_db(env, sources["env"]) < -6


def test_a_cue_whose_source_has_no_high_band_leaves_it_to_the_others(oracle_scene):
    rate_hz, _, mixture, _ = oracle_scene
    top = (8000, rate_hz / 2)
    (speech,) = separate(oracle_scene, ["speech"])
    assert band_db(speech, rate_hz, *top) <= band_db(mixture, rate_hz, *top) - 10


def test_remove_mode_keeps_what_it_does_not_remove_above_8khz(oracle_scene):
    rate_hz, sources, mixture, _ = oracle_scene
    top = (8000, rate_hz / 2)
    (removed,) = separate(oracle_scene, ["speech"], mode="remove", backend="onnxruntime")
    kept = sources["env"] + sources["music"]  # all the mixture has above 8 kHz
    assert abs(band_db(removed, rate_hz, *top) - band_db(kept, rate_hz, *top)) <= 1.0
    (extracted,) = separate(oracle_scene, ["speech"], backend="onnxruntime")
    assert error_db(removed + extracted, mixture) < -60  # mixture - removed = the cue
