"""StreamResampler: chunking-independent output, a steady output clock, and an exact delay."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtsep.engine.resampler import StreamResampler

DEVICE_PAIRS = [(44100, 16000), (48000, 16000), (16000, 44100), (16000, 48000)]


def _noise(channels: int, frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (channels, frames)).astype(np.float32)


def _run(resampler: StreamResampler, signal: np.ndarray, block_frames: list[int]) -> np.ndarray:
    pieces, start = [], 0
    for frames in block_frames:
        pieces.append(resampler.process(signal[:, start : start + frames]))
        start += frames
    pieces.append(resampler.flush())
    return np.concatenate(pieces, axis=1)


def test_equal_rates_return_the_block_itself_with_zero_delay() -> None:
    resampler = StreamResampler(16000, 16000, 2)
    block = _noise(2, 100)
    assert resampler.process(block) is block
    assert resampler.delay_samples == 0
    assert resampler.flush().shape == (2, 0)


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), DEVICE_PAIRS)
def test_delay_is_small_and_constant_for_device_rates(in_rate_hz: int, out_rate_hz: int) -> None:
    delay_s = StreamResampler(in_rate_hz, out_rate_hz, 1).delay_s
    assert 0.005 < delay_s <= 0.0151  # soxr variable-rate mode: 12.7 ms down, 15.0 ms up


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), [(44100, 16000), (16000, 48000)])
def test_streaming_matches_one_call_for_any_chunk_sizes(in_rate_hz: int, out_rate_hz: int) -> None:
    signal = _noise(2, in_rate_hz // 4)
    whole = _run(StreamResampler(in_rate_hz, out_rate_hz, 2), signal, [signal.shape[1]])
    rng = np.random.default_rng(1)
    sizes = list(rng.integers(1, 2000, 200))
    chunked = _run(StreamResampler(in_rate_hz, out_rate_hz, 2), signal, sizes)
    np.testing.assert_array_equal(chunked, whole)


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), DEVICE_PAIRS)
def test_output_never_falls_behind_the_input_clock(in_rate_hz: int, out_rate_hz: int) -> None:
    resampler = StreamResampler(in_rate_hz, out_rate_hz, 1)
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
def test_impulse_comes_out_delay_samples_late(in_rate_hz: int, out_rate_hz: int) -> None:
    resampler = StreamResampler(in_rate_hz, out_rate_hz, 2)
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
def test_a_1khz_tone_is_delayed_by_delay_samples_within_one_sample(
    in_rate_hz: int, out_rate_hz: int
) -> None:
    tone_hz = 1000.0
    signal = np.sin(2 * np.pi * tone_hz * np.arange(in_rate_hz // 2) / in_rate_hz)
    resampler = StreamResampler(in_rate_hz, out_rate_hz, 1)
    out = _run(resampler, signal[None].astype(np.float32), [441] * (in_rate_hz // 2 // 441 + 1))
    window = np.arange(out_rate_hz // 8, out_rate_hz // 4)
    phase = np.angle(np.sum(out[0, window] * np.exp(-2j * np.pi * tone_hz * window / out_rate_hz)))
    period_samples = out_rate_hz / tone_hz
    delay = (-np.pi / 2 - phase) / (2 * np.pi) * period_samples  # sin(w(t - d)), d modulo a period
    error = (delay - resampler.delay_samples + period_samples / 2) % period_samples
    assert abs(error - period_samples / 2) < 1.0


def test_channels_are_resampled_independently() -> None:
    signal = _noise(3, 8000)
    together = _run(StreamResampler(16000, 44100, 3), signal, [300] * 27)
    for channel in range(3):
        alone = _run(StreamResampler(16000, 44100, 1), signal[channel : channel + 1], [300] * 27)
        np.testing.assert_array_equal(together[channel], alone[0])


def test_misuse_gets_a_clear_error() -> None:
    resampler = StreamResampler(48000, 16000, 2)
    with pytest.raises(ValueError, match=r"\[channels=2, frames\]"):
        resampler.process(np.zeros((1, 10), dtype=np.float32))
    resampler.flush()
    with pytest.raises(RuntimeError, match="after flush"):
        resampler.process(np.zeros((2, 10), dtype=np.float32))
    with pytest.raises(ValueError, match="positive rates"):
        StreamResampler(0, 16000, 1)
