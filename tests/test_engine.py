"""The engine in file mode: same output as the model, exact alignment, overload, cue changes."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, sosfilt
from unpaced import first_undisturbed, run_unpaced

import rtsep
from rtsep.cli.separate_cmd import EXAMPLE
from rtsep.engine.crossfade import crossfade
from rtsep.engine.file_runner import run_file
from rtsep.engine.runtime import EngineConfig


@pytest.fixture(scope="module")
def model() -> rtsep.Model:
    return rtsep.load_model()


def noise(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Noise low-passed at 5 kHz (survives the 16 kHz model rate), ``[1, frames]``."""
    white = np.random.default_rng(seed).standard_normal(int(seconds * rate))
    return (0.1 * sosfilt(butter(8, 5000, fs=rate, output="sos"), white)).astype(np.float32)[None]


def example_mix(seconds: float) -> np.ndarray:
    """The first ``seconds`` of the shipped example (speech, music and effects, 16 kHz),
    ``[1, frames]``."""
    audio, rate = sf.read(EXAMPLE, dtype="float32")
    return audio[None, : int(seconds * rate)]


def lag_of(output: np.ndarray, reference: np.ndarray, search: int = 64) -> int:
    """Lag (samples) that best aligns ``output`` with ``reference``."""
    core = slice(search, reference.size - search)
    scores = [
        np.dot(output[core], np.roll(reference, lag)[core]) for lag in range(-search, search + 1)
    ]
    return int(np.argmax(scores)) - search


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_file_output_equals_model_separate_for_every_block_size(model, backend):
    mixture = noise(1.0, 16000)
    reference = model.separate(mixture[0], ["speech", "music"]).sources
    for block in (32, 100, 128, 256, 1000, 4096):
        run = run_file(
            model,
            mixture,
            16000,
            EngineConfig(block_samples=block, backend=backend),
            ["speech", "music"],
        )
        assert run.outputs.shape == reference.shape
        error = np.abs(run.outputs - reference).max() / np.abs(reference).max()
        assert error < 1e-4, f"block {block}: {error}"
        assert run.engine.stats.deadline_misses == 0


@pytest.mark.parametrize("rate", [44100, 48000])
@pytest.mark.parametrize("block", [64, 128, 1000])
def test_outputs_add_up_to_the_mixture_at_full_band_and_sample_aligned(model, rate, block):
    # Extracted cues plus the residual add up to the mixture, whatever the weights: at the
    # device rate, with its whole band (white noise to Nyquist), delayed by exactly the
    # reported latency (run_file trims that much: any other delay would leave an error).
    mixture = 0.1 * np.random.default_rng(block).standard_normal((1, rate)).astype(np.float32)
    config = EngineConfig(block_samples=block, backend="onnxruntime", residual=True)
    run = run_file(model, mixture, rate, config, ["speech"])
    assert run.outputs.shape == (2, mixture.shape[1])
    error = run.outputs.sum(axis=0) - mixture[0]
    assert 10 * np.log10(np.sum(error**2) / np.sum(mixture**2)) < -60
    assert float(run.engine.latency.total_samples).is_integer()  # nothing fractional on the way


def test_latency_at_the_model_rate_is_the_formula_it_always_was(model):
    # block + window - gcd(block, hop) + safety: the exact walk of the block and frame
    # pattern gives the closed form where no resampler is involved.
    from math import ceil, gcd

    from rtsep.engine.runtime import Engine

    for block in (32, 100, 128, 256, 1000):
        latency = Engine(model, EngineConfig(block_samples=block, backend="torch")).latency
        assert latency.total_samples == block + 256 - gcd(block, 128) + ceil(3.0 * 16)


def test_latency_formula_leaves_no_deadline_miss_without_safety_margin(model):
    for rate in (16000, 44100, 48000):
        for block in (32, 128, 1000):
            config = EngineConfig(block_samples=block, backend="onnxruntime", safety_ms=0.0)
            run = run_file(model, noise(0.5, rate), rate, config, ["music"])
            assert run.engine.stats.deadline_misses == 0, (rate, block)


def test_a_stall_in_the_worker_drops_stale_audio_and_latency_returns_to_nominal(model):
    rate = 16000
    mixture = noise(3.0, rate, seed=4)
    config = EngineConfig(block_samples=256, backend="onnxruntime", residual=True)

    def stall_after_half_a_second(engine):
        import threading

        threading.Timer(0.5, engine.stall, args=(0.3,)).start()

    run = run_file(
        model, mixture, rate, config, ["env"], realtime=True, on_start=stall_after_half_a_second
    )
    stats = run.engine.stats.snapshot()
    assert stats["deadline_misses"] > 0
    assert stats["underrun_samples"] >= 0.2 * rate  # most of the stall was played as silence
    # The backlog is bounded by design, whatever the load on the machine.
    assert (
        stats["queue_depth_samples"] <= config.max_backlog_seconds * rate + 2 * config.block_samples
    )
    # After the stall the output is aligned with the input again, at the nominal latency.
    tail = slice(int(1.5 * rate), int(2.8 * rate))
    total = run.outputs.sum(axis=0)
    assert lag_of(total[tail], mixture[0, tail]) == 0


def test_cue_change_is_applied_at_a_chunk_boundary_and_measured(model):
    rate = 16000
    mixture = example_mix(seconds=2.0)

    def change_cues_soon(engine):
        import threading

        threading.Timer(0.5, lambda: versions.append(engine.set_cues(["music"]))).start()

    config = EngineConfig(block_samples=128, backend="onnxruntime")

    def attempt():
        versions.clear()
        return run_file(
            model, mixture, rate, config, ["speech"], realtime=True, on_start=change_cues_soon
        )

    versions = []
    run = first_undisturbed(attempt, lambda run: run.engine)
    assert versions and run.engine.wait_applied(versions[0], timeout_s=0)
    assert run.engine.cues == ["music"]
    applied = [e for e in run.engine.events if e["event"] == "cues_applied"]
    assert len(applied) == 1 and applied[0]["cues"] == ["music"]
    assert applied[0]["switch_ms"] > 0  # measured: receipt to the first changed output sample
    # At the chunk boundary it recorded, sample for sample: the paced run equals an unpaced
    # one whose cues change before that chunk, and differs from one that never changes.
    chunk = applied[0]["chunk"]
    switched, engine = run_unpaced(model, mixture, ["speech"], (chunk, ["music"]))
    steady, _ = run_unpaced(model, mixture, ["speech"])
    delay = round(engine.latency.total_samples)
    heard = run.outputs[:, : mixture.shape[1] - delay]
    scale = np.abs(switched).max()
    np.testing.assert_allclose(heard, switched[:, delay:], rtol=0, atol=1e-4 * scale)
    assert np.abs(heard - steady[:, delay:]).max() > 0.1 * scale


def test_a_cue_change_fades_from_exactly_the_old_outputs_to_exactly_the_new_ones(model):
    # Swapping two cues changes no output's queries, only the channel order: the model is
    # the same with its outputs permuted. So the result is known sample by sample: the
    # outputs as they were, one chunk of crossfade, then the swapped outputs going on
    # without a restart (each takes over the state of the output it continues).
    mixture = example_mix(seconds=1.0)  # real sound: a trained model all but silences noise
    steady, engine = run_unpaced(model, mixture, ["speech", "env"])
    swapped, _ = run_unpaced(model, mixture, ["speech", "env"], switch=(50, ["env", "speech"]))
    # The switch chunk holds input [6400, 6528); its output leaves the model one hop
    # (window - hop) later and the engine as a whole ``total_samples`` later.
    chunk = engine.chunk_samples
    fade_start = 50 * 128 - (model.config.window_samples - model.hop_samples)
    fade_start += int(engine.latency.total_samples)
    fade = slice(fade_start, fade_start + chunk)
    expected = steady.copy()
    expected[:, fade] = crossfade(steady[:, fade], steady[::-1, fade])
    expected[:, fade.stop :] = steady[::-1, fade.stop :]
    difference = np.abs(steady[0, fade.stop :] - steady[1, fade.stop :]).max()
    assert difference > 0.02 * np.abs(mixture).max()  # the two outputs differ
    np.testing.assert_allclose(swapped, expected, atol=1e-5)


def test_bad_requests_change_nothing(model):
    from rtsep.engine.runtime import Engine

    engine = Engine(model, EngineConfig(backend="torch"), ["speech"])
    version = engine.control.snapshot().version
    with pytest.raises(ValueError, match="violin"):
        engine.set_cues(["label:violin"])
    with pytest.raises(ValueError, match="dance"):
        engine.set_mode("dance")
    with pytest.raises(ValueError):
        engine.set_gain(7, -6.0)
    assert engine.control.snapshot().version == version
    assert engine.cues == ["speech"] and engine.mode == "extract"


def test_nonfinite_live_input_is_zeroed_before_the_model_and_counted(model):
    # The live path (push_input from a device callback) has no file reader to clean it: one
    # NaN would poison the model's recurrent state for the rest of the session.
    from rtsep.engine.runtime import Engine

    engine = Engine(model, EngineConfig(block_samples=128, backend="onnxruntime"), ["speech"])
    signal = noise(0.5, 16000, seed=5)
    signal[0, 1000:1010] = np.nan
    signal[0, 3000] = np.inf
    signal[0, 3001] = -np.inf
    out = np.zeros((engine.channels, signal.shape[1]), np.float32)
    for start in range(0, signal.shape[1] - 127, 128):
        engine.push_input(signal[:, start : start + 128])
        engine.process_pending_input()
        engine.pull_output(out[:, start : start + 128])
    assert np.isfinite(out).all()
    assert np.abs(out[:, -2000:]).max() > 0  # still separating after the bad samples
    assert engine.status()["stats"]["nonfinite_samples"] == 12
    assert engine.control.stats()["counters"]["nonfinite_samples"] == 12


def test_tune_for_real_time_freezes_the_start_up_heap_and_shortens_gil_slices():
    import gc
    import sys

    from rtsep.engine.runtime import GIL_SWITCH_INTERVAL_S, tune_for_real_time

    interval = sys.getswitchinterval()
    try:
        tune_for_real_time()
        assert gc.get_freeze_count() > 0  # later collections skip everything alive now
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL_S)
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)
