"""Many streams in one batched step give what each stream gives alone (BatchStreamer, and
the StepGroup that batches engines of files)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from architectures import VARIANTS, model_of

import rtsep
from rtsep.engine import BatchStreamer, Streamer, TorchBackend, make_backend
from rtsep.engine.backends import cue_outputs, eda_outputs
from rtsep.engine.step_group import StepGroup

TOLERANCE = 1e-4  # max abs error / max abs reference, per stream


@pytest.fixture(scope="module", params=VARIANTS)
def model(request) -> rtsep.Model:
    return model_of(request.param)


def signals(streams: int, samples: int) -> np.ndarray:
    """Different content per stream: a tone at its own pitch plus noise bursts."""
    rng = np.random.default_rng(11)
    t = np.arange(samples) / 16000
    rows = []
    for b in range(streams):
        tone = 0.2 * np.sin(2 * np.pi * (220 + 110 * b) * t)
        bursts = 0.05 * rng.standard_normal(samples) * (np.sin(2 * np.pi * (2 + b) * t) > 0)
        rows.append(tone + bursts)
    return np.stack(rows).astype(np.float32)


def alone(model: rtsep.Model, cues, signal: np.ndarray, sizes) -> np.ndarray:
    streamer, pieces, start = Streamer(model, cues), [], 0
    for size in sizes:
        pieces.append(streamer.process(signal[start : start + size]))
        start += size
    pieces.append(streamer.flush())
    return np.concatenate(pieces, axis=1)


def batched(model: rtsep.Model, cues, batch: np.ndarray, sizes) -> np.ndarray:
    streamer, pieces, start = BatchStreamer(model, cues), [], 0
    for size in sizes:
        pieces.append(streamer.process(batch[:, start : start + size]))
        start += size
    pieces.append(streamer.flush())
    return np.concatenate(pieces, axis=2)


@pytest.mark.parametrize(
    "cues",
    [
        [["speech", "music"], ["env", "speech"], ["music", "label:env"]],
        [None, ["speech", "music", "env", "speech"], None],
    ],
    ids=["cues-per-stream", "eda-beside-cues"],
)
def test_batched_streams_equal_separate_streamers(model, cues):
    batch = signals(len(cues), 9000)
    sizes = [1, 300, 128, 1000, 4000, 77]  # 5506 samples, then the rest by flush
    sizes.append(batch.shape[1] - sum(sizes))
    together = batched(model, cues, batch, sizes)
    assert together.shape[0] == len(cues) and together.shape[2] == batch.shape[1]
    for b, stream_cues in enumerate(cues):
        reference = alone(model, stream_cues, batch[b], sizes)
        assert together[b].shape == reference.shape
        error = np.abs(together[b] - reference).max() / np.abs(reference).max()
        assert error < TOLERANCE, f"stream {b}"


def test_streams_with_different_output_counts_are_refused(model):
    with pytest.raises(ValueError, match="same number of outputs"):
        BatchStreamer(model, [["speech"], ["speech", "music"]])


def test_cuda_graphs_are_refused_for_a_model_on_the_cpu(model):
    with pytest.raises(ValueError, match="CUDA graphs need the model on a CUDA device"):
        BatchStreamer(model, [["speech"]], cuda_graphs=True)
    with pytest.raises(ValueError, match="torch-cuda-graphs backend needs the model on a CUDA"):
        make_backend(model, "torch-cuda-graphs")


def run_members(group: StepGroup, specs, signals: list[np.ndarray]) -> list:
    """One thread per signal, each a member of ``group`` stepping its signal hop by hop and
    leaving when it ends; returns each thread's output or the exception it raised."""
    results: list = [None] * len(signals)

    def stream(index: int) -> None:
        member = group.join(specs)
        try:
            results[index] = member.step(signals[index])
        except Exception as error:  # noqa: BLE001 - returned to the test
            results[index] = error
        finally:
            group.leave(member)

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(len(signals))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a member is still waiting"
    return results


@pytest.mark.parametrize("cues", [["speech", "music"], None], ids=["cues", "eda"])
def test_step_group_members_of_different_lengths_equal_torch_backends_alone(model, cues):
    hop = model.hop_samples
    queries = model.cue_queries(cues).numpy() if cues else None
    specs = cue_outputs(queries) if cues else eda_outputs(model)
    streams = [s[: hops * hop] for s, hops in zip(signals(3, 40 * hop), (40, 7, 23))]
    together = run_members(StepGroup(model, len(streams)), specs, streams)
    for signal, got in zip(streams, together):
        alone = TorchBackend(model)
        alone.reset(queries)
        expected = alone.step(signal)
        assert got.audio.shape == expected.audio.shape
        assert np.abs(got.audio - expected.audio).max() / np.abs(expected.audio).max() < TOLERANCE
        np.testing.assert_allclose(got.gains, expected.gains, rtol=0, atol=TOLERANCE)


def test_a_failing_batched_step_fails_every_member_instead_of_hanging(model, monkeypatch):
    group = StepGroup(model, 2)
    monkeypatch.setattr(group, "_step", lambda members: 1 / 0)
    streams = list(signals(2, 4 * model.hop_samples))
    results = run_members(group, eda_outputs(model), streams)
    assert all(isinstance(r, RuntimeError) and "division by zero" in str(r) for r in results)
