"""Streaming resamplers: chunking-independent output, a steady output clock, an exact delay, and
(polyphase) ≤ 1 ms delay with ≥ 70 dB stop-band rejection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtsep.engine.polyphase import polyphase_kernel
from rtsep.engine.resampler import (
    PolyphaseResampler,
    SoxrResampler,
    make_resampler,
)

DEVICE_PAIRS = [(44100, 16000), (48000, 16000), (16000, 44100), (16000, 48000)]
KINDS = ["polyphase", "soxr"]
#: Least stop-band rejection of the polyphase resampler (dB), from the issue.
REJECTION_DB = 70.0


def _noise(channels: int, frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (channels, frames)).astype(np.float32)


def _run(resampler, signal: np.ndarray, block_frames: list[int]) -> np.ndarray:
    pieces, start = [], 0
    for frames in block_frames:
        pieces.append(resampler.process(signal[:, start : start + frames]))
        start += frames
    pieces.append(resampler.flush())
    return np.concatenate(pieces, axis=1)


def _sines(freqs_hz: np.ndarray, phases: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """Sum of unit sines at ``times_s``, normalised to 0.5 peak-ish (float64)."""
    return np.sin(2 * np.pi * freqs_hz[:, None] * times_s[None] + phases[:, None]).sum(0) / (
        2 * math.sqrt(freqs_hz.size)
    )


@pytest.mark.parametrize("kind", KINDS)
def test_equal_rates_return_the_block_itself_with_zero_delay(kind: str) -> None:
    resampler = make_resampler(16000, 16000, 2, kind)
    block = _noise(2, 100)
    assert resampler.process(block) is block
    assert resampler.delay_samples == 0
    assert resampler.flush().shape == (2, 0)


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), DEVICE_PAIRS)
def test_polyphase_delay_is_one_millisecond_each_way(in_rate_hz: int, out_rate_hz: int) -> None:
    resampler = PolyphaseResampler(in_rate_hz, out_rate_hz, 1)
    assert resampler.delay_s == pytest.approx(0.001, abs=1e-12)
    assert resampler.delay_samples == out_rate_hz / 1000


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), DEVICE_PAIRS)
def test_soxr_delay_is_small_and_constant_for_device_rates(
    in_rate_hz: int, out_rate_hz: int
) -> None:
    delay_s = SoxrResampler(in_rate_hz, out_rate_hz, 1).delay_s
    assert 0.005 < delay_s <= 0.0151  # soxr variable-rate mode: 12.7 ms down, 15.0 ms up


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), [(44100, 16000), (16000, 48000)])
def test_streaming_matches_one_call_for_any_block_sizes(
    kind: str, in_rate_hz: int, out_rate_hz: int
) -> None:
    signal = _noise(2, in_rate_hz // 4)
    whole = _run(make_resampler(in_rate_hz, out_rate_hz, 2, kind), signal, [signal.shape[1]])
    rng = np.random.default_rng(1)
    sizes = [int(n) for n in rng.integers(1, 2000, 200)]
    chunked = _run(make_resampler(in_rate_hz, out_rate_hz, 2, kind), signal, sizes)
    np.testing.assert_array_equal(chunked, whole)
    ones = _run(make_resampler(in_rate_hz, out_rate_hz, 2, kind), signal[:, :3000], [1] * 3000)
    np.testing.assert_array_equal(ones[:, :1000], whole[:, :1000])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), DEVICE_PAIRS)
def test_output_never_falls_behind_the_input_clock(
    kind: str, in_rate_hz: int, out_rate_hz: int
) -> None:
    resampler = make_resampler(in_rate_hz, out_rate_hz, 1, kind)
    rng = np.random.default_rng(2)
    taken = given = 0
    for frames in rng.integers(1, 600, 300):
        given += int(frames)
        taken += resampler.process(_noise(1, int(frames))).shape[1]
        assert taken >= math.floor(given * out_rate_hz / in_rate_hz)
        assert taken <= given * out_rate_hz / in_rate_hz + resampler.delay_samples + 3
    taken += resampler.flush().shape[1]
    assert abs(taken - (given * out_rate_hz / in_rate_hz + resampler.delay_samples)) <= 3


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), DEVICE_PAIRS)
@pytest.mark.parametrize(
    "signal_kind", ["tone-100", "tone-1000", "tone-4000", "tone-5000", "noise-below-5k"]
)
def test_polyphase_output_is_the_input_delayed_by_delay_samples(
    in_rate_hz: int, out_rate_hz: int, signal_kind: str
) -> None:
    # The input is a sum of sines (one tone, or 300 at random frequencies below 5 kHz: noise
    # whose value is known at any time), so the ideal output is known exactly: the same sum,
    # sampled at the output rate, delayed by delay_samples. A delay off by 0.001 sample would
    # show at 5 kHz as a -40 dB error; the pass band is flat to 0.001 dB there.
    rng = np.random.default_rng(3)
    if signal_kind.startswith("tone"):
        freqs = np.array([float(signal_kind.split("-")[1])])
    else:
        freqs = rng.uniform(20.0, 5000.0, 300)
    phases = rng.uniform(0, 2 * np.pi, freqs.size)
    seconds = 0.25
    signal = _sines(freqs, phases, np.arange(int(seconds * in_rate_hz)) / in_rate_hz)
    resampler = PolyphaseResampler(in_rate_hz, out_rate_hz, 1)
    out = _run(resampler, signal[None].astype(np.float32), [441] * (signal.size // 441 + 1))[0]
    steady = np.arange(out_rate_hz // 50, int((seconds - 0.02) * out_rate_hz))
    ideal = _sines(freqs, phases, (steady - resampler.delay_samples) / out_rate_hz)
    error_db = 10 * np.log10(np.mean((out[steady] - ideal) ** 2) / np.mean(ideal**2))
    assert error_db < -60.0, error_db


@pytest.mark.parametrize(
    ("in_rate_hz", "tone_hz"),
    [(48000, f) for f in (8000, 8500, 12000, 23000)]
    + [(44100, f) for f in (8000, 9000, 11025, 21000)],
)
def test_polyphase_rejects_the_stop_band_by_70_db_downsampling(
    in_rate_hz: int, tone_hz: float
) -> None:
    # A tone above 8 kHz cannot be represented at 16 kHz: all that comes out is its alias.
    seconds = 0.25
    tone = np.sin(2 * np.pi * tone_hz * np.arange(int(seconds * in_rate_hz)) / in_rate_hz)
    resampler = PolyphaseResampler(in_rate_hz, 16000, 1)
    out = _run(resampler, tone[None].astype(np.float32), [256] * (tone.size // 256 + 1))[0]
    steady = out[320:3600]
    rejection_db = -10 * np.log10(np.mean(steady.astype(np.float64) ** 2) / 0.5)
    assert rejection_db >= REJECTION_DB, (tone_hz, rejection_db)


@pytest.mark.parametrize("out_rate_hz", [44100, 48000])
@pytest.mark.parametrize("tone_hz", [1000.0, 5000.0, 7000.0, 7900.0])
def test_polyphase_rejects_images_by_70_db_upsampling(out_rate_hz: int, tone_hz: float) -> None:
    # Upsampling a tone at f leaves images at 16 kHz - f, 16 kHz + f, ... (all >= 8 kHz): the
    # output minus its best fit at f is what leaked through the stop band.
    seconds = 0.25
    tone = np.sin(2 * np.pi * tone_hz * np.arange(int(seconds * 16000)) / 16000)
    resampler = PolyphaseResampler(16000, out_rate_hz, 1)
    out = _run(resampler, tone[None].astype(np.float32), [128] * (tone.size // 128 + 1))[0]
    t = np.arange(out_rate_hz // 50, int((seconds - 0.02) * out_rate_hz)) / out_rate_hz
    basis = np.stack([np.sin(2 * np.pi * tone_hz * t), np.cos(2 * np.pi * tone_hz * t)], 1)
    steady = out[np.round(t * out_rate_hz).astype(int)].astype(np.float64)
    fit, *_ = np.linalg.lstsq(basis, steady, rcond=None)
    residual = steady - basis @ fit
    rejection_db = -10 * np.log10(np.mean(residual**2) / 0.5)
    assert rejection_db >= REJECTION_DB, (tone_hz, rejection_db)


def test_polyphase_kernel_is_compiled_before_any_audio() -> None:
    resampler = PolyphaseResampler(48000, 16000, 1)
    compiled = list(polyphase_kernel.signatures)
    assert compiled, "the kernel was not compiled when the resampler was built"
    for frames in (1, 128, 1000):
        resampler.process(_noise(1, frames))
    assert list(polyphase_kernel.signatures) == compiled  # nothing new compiled on the way


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), DEVICE_PAIRS)
def test_soxr_impulse_comes_out_delay_samples_late(in_rate_hz: int, out_rate_hz: int) -> None:
    resampler = SoxrResampler(in_rate_hz, out_rate_hz, 2)
    period = in_rate_hz // math.gcd(in_rate_hz, out_rate_hz)  # input index with whole output time
    at = period * (in_rate_hz // 7 // period)
    signal = np.zeros((2, in_rate_hz // 2), dtype=np.float32)
    signal[:, at] = 1.0
    out = _run(resampler, signal, [256] * (signal.shape[1] // 256 + 1))
    for channel in out:
        peak = int(np.argmax(np.abs(channel)))
        left, centre, right = np.abs(channel[peak - 1 : peak + 2]).astype(np.float64)
        position = peak + 0.5 * (left - right) / (left - 2 * centre + right)
        expected = at * out_rate_hz / in_rate_hz + resampler.delay_samples
        assert position == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), DEVICE_PAIRS)
def test_soxr_1khz_tone_is_delayed_by_delay_samples_within_one_sample(
    in_rate_hz: int, out_rate_hz: int
) -> None:
    tone_hz = 1000.0
    signal = np.sin(2 * np.pi * tone_hz * np.arange(in_rate_hz // 2) / in_rate_hz)
    resampler = SoxrResampler(in_rate_hz, out_rate_hz, 1)
    out = _run(resampler, signal[None].astype(np.float32), [441] * (in_rate_hz // 2 // 441 + 1))
    window = np.arange(out_rate_hz // 8, out_rate_hz // 4)
    phase = np.angle(np.sum(out[0, window] * np.exp(-2j * np.pi * tone_hz * window / out_rate_hz)))
    period_samples = out_rate_hz / tone_hz
    delay = (-np.pi / 2 - phase) / (2 * np.pi) * period_samples  # sin(w(t - d)), d modulo a period
    error = (delay - resampler.delay_samples + period_samples / 2) % period_samples
    assert abs(error - period_samples / 2) < 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_channels_are_resampled_independently(kind: str) -> None:
    signal = _noise(3, 8000)
    together = _run(make_resampler(16000, 44100, 3, kind), signal, [300] * 27)
    for channel in range(3):
        alone = _run(
            make_resampler(16000, 44100, 1, kind), signal[channel : channel + 1], [300] * 27
        )
        np.testing.assert_array_equal(together[channel], alone[0])


@pytest.mark.parametrize("kind", KINDS)
def test_misuse_gets_a_clear_error(kind: str) -> None:
    resampler = make_resampler(48000, 16000, 2, kind)
    with pytest.raises(ValueError, match=r"\[channels=2, frames\]"):
        resampler.process(np.zeros((1, 10), dtype=np.float32))
    resampler.flush()
    with pytest.raises(RuntimeError, match="after flush"):
        resampler.process(np.zeros((2, 10), dtype=np.float32))
    with pytest.raises(ValueError, match="positive rates"):
        make_resampler(0, 16000, 1, kind)


def test_an_unknown_resampler_is_named_with_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown resampler 'sinc': use one of polyphase, soxr"):
        make_resampler(48000, 16000, 1, "sinc")
