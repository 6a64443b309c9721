"""Activity of an output: from its level and the mixture's, with the rule stated."""

from __future__ import annotations

import numpy as np

from rtsep.engine.file_runner import (
    ACTIVITY_BELOW_MIX_DB,
    ACTIVITY_THRESHOLD_DB,
    active_seconds,
    activity_rule,
)

RATE = 16000


def _noise(seconds: float, db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(int(seconds * RATE))
    return (10 ** (db / 20) * noise).astype(np.float32)


def test_a_leak_far_below_the_mixture_is_not_active_even_when_it_is_loud():
    mixture = _noise(4.0, -10.0)
    leak = 10 ** (-25 / 20) * mixture  # -35 dBFS: above the absolute floor, 25 dB under the mix
    assert 20 * np.log10(np.std(leak)) > ACTIVITY_THRESHOLD_DB
    assert active_seconds(leak, RATE) == 4.0  # the level alone would call it active
    assert active_seconds(leak, RATE, mixture) == 0.0


def test_an_output_that_carries_the_mixture_is_active_where_the_mixture_is():
    mixture = np.concatenate([_noise(1.0, -20.0), np.zeros(RATE, np.float32), _noise(2.0, -20.0)])
    assert active_seconds(mixture, RATE, mixture) == 3.0
    part = 10 ** ((1 - ACTIVITY_BELOW_MIX_DB) / 20) * mixture  # just inside the margin
    assert active_seconds(part, RATE, mixture) == 3.0


def test_quiet_signals_are_inactive_whatever_the_mixture():
    quiet = _noise(2.0, ACTIVITY_THRESHOLD_DB - 10)
    assert active_seconds(quiet, RATE, quiet) == 0.0


def test_the_rule_names_window_floor_and_margin():
    rule = activity_rule()
    assert "20 ms" in rule and f"{ACTIVITY_THRESHOLD_DB:g} dBFS" in rule
    assert f"{ACTIVITY_BELOW_MIX_DB:g} dB" in rule
