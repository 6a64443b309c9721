"""The streaming contract: what trains (whole-signal forward) is what streams, for any blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from architectures import COSTLY, VARIANTS, model_of

import rtsep
from rtsep.engine import Streamer

TOLERANCE = 1e-4  # max abs error / max abs reference


@pytest.fixture(scope="module", params=VARIANTS)
def model(request) -> rtsep.Model:
    return model_of(request.param)


@pytest.fixture(scope="module")
def mixture() -> np.ndarray:
    """0.7 s of a tone, a chirp and two noise bursts: 87.5 hops, not a whole number. (1.3 s
    made the block plans cost 50 s: each hop is a model step, whatever the block size.)"""
    rate = 16000
    t = np.arange(int(0.7 * rate)) / rate
    tone = 0.2 * np.sin(2 * np.pi * 440 * t)
    chirp = 0.1 * np.sin(2 * np.pi * (200 + 1500 * t) * t)
    bursts = (
        0.05 * np.random.default_rng(1).standard_normal(t.size) * (np.sin(2 * np.pi * 3 * t) > 0)
    )
    return (tone + chirp + bursts).astype(np.float32)


def stream(streamer: Streamer, signal: np.ndarray, sizes) -> np.ndarray:
    outputs, position = [], 0
    for size in sizes:
        if position >= signal.size:
            break
        outputs.append(streamer.process(signal[position : position + size]))
        position += size
    outputs.append(streamer.process(signal[position:]))
    outputs.append(streamer.flush())
    return np.concatenate(outputs, axis=1)


def relative_error(estimate: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(estimate - reference).max() / np.abs(reference).max())


def eda_reference(model: rtsep.Model, signal: np.ndarray) -> np.ndarray:
    """Every EDA slot of the whole-signal forward pass, aligned and trimmed like separate()."""
    hop = model.hop_samples
    padded = torch.zeros(1, -(-signal.size // hop) * hop + hop)
    padded[0, : signal.size] = torch.from_numpy(signal)
    with torch.no_grad():
        return model.network(padded).sources[0, :, : signal.size].numpy()


def block_plans(length: int):
    rng = np.random.default_rng(7)
    for size in (1, 37, 128, 480, 1024):
        yield f"blocks of {size}", [size] * (length // size + 1)
    yield "random blocks", list(rng.integers(0, 3000, size=200))


@pytest.mark.parametrize(
    "cues", [["speech", "music"], ["someone talking", "label:env"]], ids=["labels", "text"]
)
@pytest.mark.parametrize("model", COSTLY, indirect=True)
def test_streaming_matches_separate_for_any_block_size_with_cues(model, mixture, cues):
    reference = model.separate(mixture, cues).sources
    for plan, sizes in block_plans(mixture.size):
        output = stream(Streamer(model, cues), mixture, sizes)
        assert output.shape == reference.shape, plan
        assert relative_error(output, reference) < TOLERANCE, plan


@pytest.mark.parametrize("model", COSTLY, indirect=True)
def test_streaming_matches_whole_signal_forward_with_attractors(model, mixture):
    reference = eda_reference(model, mixture)
    for plan, sizes in block_plans(mixture.size):
        output = stream(Streamer(model), mixture, sizes)
        assert output.shape == reference.shape, plan
        assert relative_error(output, reference) < TOLERANCE, plan


def test_separate_without_cues_returns_the_active_eda_slots(model, mixture):
    separation = model.separate(mixture)
    reference = eda_reference(model, mixture)
    assert separation.sources.shape == (len(separation.slots), mixture.size)
    assert len(separation.labels) == len(separation.slots)
    assert set(separation.labels) <= set(model.labels)
    for row, slot in enumerate(separation.slots):
        assert (separation.existence[slot] >= 0.5).any()
        np.testing.assert_allclose(separation.sources[row], reference[slot], atol=1e-6)


def test_streamer_never_returns_more_than_it_was_fed_and_lags_less_than_the_latency(model, mixture):
    streamer = Streamer(model, ["speech"])
    fed = returned = 0
    for size in (1, 5, 200, 77, 1000, 3):
        returned += streamer.process(mixture[fed : fed + size]).shape[1]
        fed += size
        assert fed - streamer.latency_samples < returned <= fed
    assert returned + streamer.flush().shape[1] == fed


def test_model_step_with_chunks_of_1_2_4_and_7_hops_matches_one_call(model, mixture):
    hop = model.hop_samples
    signal = torch.from_numpy(mixture[: 60 * hop])[None]
    queries = model.cue_queries(["music"])[None]
    whole, whole_gains, _ = model.step(signal, queries, model.init_state(1, 1))
    state, pieces, gains, start = model.init_state(1, 1), [], [], 0
    for hops in (1, 2, 4, 7) * 5:
        chunk = signal[:, start : start + hops * hop]
        if chunk.shape[1] == 0:
            break
        out, (real, imag), state = model.step(chunk, queries, state)
        pieces.append(out)
        gains.append(torch.complex(real, imag))
        start += hops * hop
    chunked = torch.cat(pieces, dim=-1)
    assert chunked.shape == whole.shape
    assert relative_error(chunked.numpy(), whole.numpy()) < TOLERANCE
    # The gains per hop, which the engine applies at the device rate, stream the same way.
    expected = torch.complex(*whole_gains)
    assert relative_error(torch.cat(gains, dim=2).numpy(), expected.numpy()) < TOLERANCE


def test_step_gains_per_hop_are_those_of_the_whole_signal_forward(model, mixture):
    # Compared where they act, on the mixture's spectrum: in a near-silent bin a random
    # network's gain may differ by rounding (2e-4 in v2) with no effect on any output.
    hop = model.hop_samples
    signal = torch.from_numpy(mixture[: 40 * hop])[None]
    queries = model.cue_queries(["speech", "env"])[None]
    with torch.no_grad():
        whole = model.network(signal, queries).gains
        size = torch.abs(torch.complex(*model.network.analyse_whole(signal)))[:, None]
    _, streamed, _ = model.step(signal, queries, model.init_state(1, 2))
    assert whole[0].shape == (1, 2, 40, model.config.frequency_bins)
    streamed, whole = torch.complex(*streamed), torch.complex(*whole)
    assert relative_error((streamed * size).numpy(), (whole * size).numpy()) < TOLERANCE


def test_separated_sources_are_aligned_with_the_input_and_of_equal_length(model, mixture):
    separation = model.separate(mixture, ["speech", "music", "env"])
    assert separation.sources.shape == (3, mixture.size)
    assert separation.sources.dtype == np.float32
    assert separation.labels == ["speech", "music", "env"]
