"""The engine's crossfade: equal-power for uncorrelated signals, no level bump for correlated
ones, and no step at either end."""

from __future__ import annotations

import numpy as np

from rtsep.engine.crossfade import crossfade

N = 128


def tone(hz: float, phase: float = 0.0) -> np.ndarray:
    return np.sin(2 * np.pi * hz * np.arange(N) / 16000 + phase).astype(np.float32)


def test_a_signal_faded_into_itself_passes_unchanged() -> None:
    signal = np.stack([tone(440), 0.3 * tone(1000)])
    np.testing.assert_allclose(crossfade(signal, signal), signal, atol=1e-6)


def test_uncorrelated_signals_get_the_plain_equal_power_fade() -> None:
    before = np.random.default_rng(0).standard_normal((1, N)).astype(np.float32)
    after = np.random.default_rng(1).standard_normal((1, N)).astype(np.float32)
    after -= np.mean(before * after) / np.mean(before * before) * before  # exactly orthogonal
    phase = (np.arange(N) + 0.5) / N * (np.pi / 2)
    plain = before * np.cos(phase) + after * np.sin(phase)
    np.testing.assert_allclose(crossfade(before, after), plain, atol=1e-5)


def level_db(signal: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(signal, dtype=np.float64))))


def test_a_correlated_fade_keeps_the_level_of_its_two_ends() -> None:
    # Same level, 64 % correlated (a shared part plus a part of each's own).
    shared, own_before, own_after = np.random.default_rng(2).standard_normal((3, 1, 4096))
    before = (0.8 * shared + 0.6 * own_before).astype(np.float32)
    after = (0.8 * shared + 0.6 * own_after).astype(np.float32)
    phase = (np.arange(4096) + 0.5) / 4096 * (np.pi / 2)
    plain = before * np.cos(phase) + after * np.sin(phase)
    assert level_db(plain) - level_db(before) > 1.0  # the bump the correction removes
    faded = crossfade(before, after)
    assert abs(level_db(faded) - level_db(before)) < 0.2
    assert faded.dtype == np.float32


def test_the_fade_starts_on_the_old_signal_and_ends_on_the_new_one() -> None:
    before, after = np.stack([tone(440)]), np.stack([-tone(440)])  # anti-correlated
    faded = crossfade(before, after)
    assert abs(faded[0, 0] - before[0, 0]) < 0.02 and abs(faded[0, -1] - after[0, -1]) < 0.02
    assert np.all(np.isfinite(crossfade(np.zeros((1, N)), np.zeros((1, N)))))
